//! The live terminal view of a cutover (`migrator run`, `migrator demo`):
//! the steps with the current one highlighted, replies per 100 ms stacked by
//! instance over the last 30 s (failures red), p50/p99, sent/ok/failed/
//! missed, the current and longest gap, the overlap, where the record
//! points. On by default when stdout is a terminal, off with `--no-tui`,
//! never when piped (then the run prints its lines as before). `--cast FILE`
//! records it as asciicast v2, on a terminal or not.
//!
//! - [`board`]: what the pipeline tells the view (steps, progress, notes, target, verdict).
//! - [`window`]: the last 30 s of replies per 100 ms, a fixed ring.
//! - [`snapshot`]: one frame's state as plain data.
//! - [`draw`]: the layout, a pure function of a snapshot.
//! - [`chart`]: the stacked replies chart.
//! - [`terminal`]: the view's thread, keys, and restoring the terminal.
//! - [`cast`]: the asciicast v2 recording.

pub mod board;
pub mod cast;
pub mod chart;
pub mod draw;
pub mod snapshot;
pub mod terminal;
pub mod window;

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use tokio_util::sync::CancellationToken;

pub use board::Board;
use terminal::{Screen, View, ViewSetup};

/// The view's flags, shared by `run` and `demo`.
#[derive(Debug, Clone, Default, Args)]
pub struct ViewArgs {
    /// No live terminal view: print a line per step and per second, as
    /// when stdout is not a terminal.
    #[arg(long)]
    pub no_tui: bool,
    /// Record the live view as an asciicast v2 file (drawn off screen at
    /// 110×30 when there is no terminal view).
    #[arg(long, value_name = "FILE")]
    pub cast: Option<PathBuf>,
}

impl ViewArgs {
    /// Refuses a `--cast` path that cannot be written, before anything runs.
    pub fn check(&self) -> Result<(), ViewError> {
        let Some(path) = &self.cast else {
            return Ok(());
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        };
        if path.is_dir() || !parent.is_dir() {
            return Err(ViewError::Cast {
                path: path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not a file in an existing directory",
                ),
            });
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The cast file (or the terminal) could not be opened: nothing ran.
    #[error("--cast {}: {source}", path.display())]
    Cast {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot take the terminal for the live view ({0}); --no-tui runs without it")]
    Terminal(std::io::Error),
}

/// How a run reaches the view: its board, and whether the view has the
/// screen (then the run's lines wait for its end).
#[derive(Debug, Clone)]
pub struct Attach {
    pub board: Board,
    pub on_screen: bool,
}

/// A view that is running; [`Session::finish`] ends it.
pub struct Session {
    pub board: Board,
    /// True when the view has the screen: the run's lines wait for its end.
    pub on_screen: bool,
    view: View,
}

impl Session {
    /// Starts the view that `args` and the terminal ask for, if any.
    /// `force` ends the process on a second `q`/Ctrl-C.
    pub fn start(
        args: &ViewArgs,
        title: &str,
        cancel: CancellationToken,
        force: Box<dyn Fn() + Send>,
    ) -> Result<Option<Session>, ViewError> {
        let on_screen = !args.no_tui && terminal::stdout_is_terminal();
        if !on_screen && args.cast.is_none() {
            return Ok(None);
        }
        let board = Board::new(title);
        let screen = if on_screen {
            Screen::Terminal
        } else {
            Screen::CastOnly
        };
        let size = if on_screen {
            ratatui::crossterm::terminal::size().map_err(ViewError::Terminal)?
        } else {
            terminal::CAST_SIZE
        };
        let cast = match &args.cast {
            Some(path) => Some(cast::Cast::create(path, size.0, size.1, title).map_err(
                |source| ViewError::Cast {
                    path: path.clone(),
                    source,
                },
            )?),
            None => None,
        };
        let view = View::start(
            board.clone(),
            ViewSetup {
                screen,
                size,
                cast,
                cancel,
                force,
            },
        )
        .map_err(ViewError::Terminal)?;
        Ok(Some(Session {
            board,
            on_screen,
            view,
        }))
    }

    /// What the run's printer needs.
    pub fn attach(&self) -> Attach {
        Attach {
            board: self.board.clone(),
            on_screen: self.on_screen,
        }
    }

    /// Ends the view (the terminal restored) and prints the lines the run
    /// kept for after it.
    pub fn finish(self) {
        if let Err(e) = self.view.finish() {
            tracing::warn!(error = %e, "the live view ended with an error");
        }
        let mut out = std::io::stdout().lock();
        for line in self.board.take_lines() {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }
}
