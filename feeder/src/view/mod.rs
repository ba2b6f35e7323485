//! The live terminal view of a load (`feeder`, and under the migrator's
//! steps, `migrator run` and `migrator demo`): replies per 100 ms stacked by
//! instance over the last 30 s (failures red) and the load's figures,
//! redrawn 10 times a second on a thread of its own that only reads the
//! shared totals. On by default when stdout is a terminal, off with
//! `--no-tui`, never when piped (then the per-second lines stay).
//! `--cast FILE` records it as asciicast v2, on a terminal or not.
//!
//! - [`window`]: the last 30 s of replies per 100 ms, a fixed ring.
//! - [`chart`]: the stacked chart and its panel.
//! - [`load`]: the load's figures ([`LoadView`]).
//! - [`screen`]: the view's thread ([`Scene`]), keys, restoring the terminal.
//! - [`cast`]: the asciicast v2 recording.
//! - [`feeder`]: the feeder's own scene.

pub mod cast;
pub mod chart;
pub mod feeder;
pub mod load;
pub mod screen;
pub mod window;

use std::path::{Path, PathBuf};

use clap::Args;

pub use load::LoadView;
pub use screen::{Scene, View};
pub use window::Window;

/// The view's flags (the feeder's, and the migrator's `run` and `demo`).
#[derive(Debug, Clone, Default, Args)]
pub struct ViewArgs {
    /// No live terminal view: print a line per second (and per step), as
    /// when stdout is not a terminal.
    #[arg(long)]
    pub no_tui: bool,
    /// Record the live view as an asciicast v2 file (drawn off screen at
    /// 110×30 when there is no terminal view).
    #[arg(long, value_name = "FILE")]
    pub cast: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The cast file cannot be written: the flag's value must change.
    #[error("--cast {}: {source}", path.display())]
    Cast {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The terminal refused raw mode or the alternate screen.
    #[error("cannot take the terminal for the live view ({0}); --no-tui runs without it")]
    Terminal(std::io::Error),
}

impl ViewArgs {
    /// Refuses a `--cast` path that cannot be written, before anything runs.
    pub fn check(&self) -> Result<(), ViewError> {
        let Some(path) = &self.cast else {
            return Ok(());
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
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

    /// Whether the view takes the terminal.
    pub fn on_screen(&self) -> bool {
        !self.no_tui && screen::stdout_is_terminal()
    }

    /// Starts the view these flags and the terminal ask for, if any:
    /// `stop` on the first `q`/Ctrl-C, `force` on a second.
    pub fn open(
        &self,
        title: &str,
        scene: impl Scene,
        stop: Box<dyn Fn() + Send>,
        force: Box<dyn Fn() + Send>,
    ) -> Result<Option<View>, ViewError> {
        let on_screen = self.on_screen();
        if !on_screen && self.cast.is_none() {
            return Ok(None);
        }
        let (screen, size) = if on_screen {
            let size = ratatui::crossterm::terminal::size().map_err(ViewError::Terminal)?;
            (screen::Screen::Terminal, size)
        } else {
            (screen::Screen::CastOnly, screen::CAST_SIZE)
        };
        let cast = match &self.cast {
            Some(path) => Some(cast::Cast::create(path, size.0, size.1, title).map_err(
                |source| ViewError::Cast {
                    path: path.clone(),
                    source,
                },
            )?),
            None => None,
        };
        let setup = screen::ViewSetup {
            screen,
            size,
            cast,
            stop,
            force,
        };
        View::start(scene, setup)
            .map(Some)
            .map_err(ViewError::Terminal)
    }
}
