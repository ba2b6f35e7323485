//! The live terminal view of a cutover (`migrator run`, `migrator demo`):
//! the steps with the current one highlighted, where the record points, the
//! latest progress and notes, the verdict at the end — around the feeder's
//! view of the load ([`feeder::view`]: replies per 100 ms by instance over
//! the last 30 s, p50/p99, sent/ok/failed/missed, the gaps, the overlap).
//! On by default when stdout is a terminal, off with `--no-tui`, never when
//! piped (then the run prints its lines as before); `--cast FILE` records it.
//!
//! - [`board`]: what the pipeline tells the view (steps, progress, notes, target, verdict).
//! - [`snapshot`]: one frame's state as plain data.
//! - [`draw`]: the layout, a pure function of a snapshot.

pub mod board;
pub mod draw;
pub mod snapshot;

use std::io::Write;
use std::time::Instant;

use feeder::view::{Scene, View, ViewArgs, ViewError, Window};
use ratatui::Frame;
use tokio_util::sync::CancellationToken;

pub use board::Board;
use snapshot::Snapshot;

/// How a run reaches the view: its board, and whether the view has the
/// screen (then the run's lines wait for its end).
#[derive(Debug, Clone)]
pub struct Attach {
    pub board: Board,
    pub on_screen: bool,
}

/// The cutover as the view samples it.
struct CutoverScene {
    board: Board,
    window: Window,
    started: Instant,
    /// Also cancelled by a Ctrl-C signal (not a key): then "stopping" shows.
    cancel: CancellationToken,
    snapshot: Snapshot,
}

impl Scene for CutoverScene {
    fn sample(&mut self) {
        let mut state = self.board.state();
        state.stopping |= self.cancel.is_cancelled();
        let live = state.feeder.as_ref().map(|w| w.live());
        if let Some(l) = &live {
            self.window.sample(l);
        }
        self.snapshot = Snapshot::of(
            &state,
            &self.window,
            live.as_ref(),
            self.started,
            Instant::now(),
            crate::report::unix_ns_now(),
        );
    }

    fn draw(&self, frame: &mut Frame) {
        draw::draw(frame, &self.snapshot);
    }

    fn stopping(&mut self) {
        self.board.stopping();
    }
}

/// A view that is running; [`Session::finish`] ends it.
pub struct Session {
    pub board: Board,
    /// True when the view has the screen: the run's lines wait for its end.
    pub on_screen: bool,
    view: View,
}

impl Session {
    /// Starts the view that `args` and the terminal ask for, if any: the
    /// first `q`/Ctrl-C cancels `cancel` (the safe stop, as a Ctrl-C signal
    /// does), a second one calls `force`.
    pub fn start(
        args: &ViewArgs,
        title: &str,
        cancel: CancellationToken,
        force: Box<dyn Fn() + Send>,
    ) -> Result<Option<Session>, ViewError> {
        let board = Board::new(title);
        let scene = CutoverScene {
            board: board.clone(),
            window: Window::default(),
            started: Instant::now(),
            cancel: cancel.clone(),
            snapshot: Snapshot::default(),
        };
        let stop = Box::new(move || cancel.cancel());
        Ok(args.open(title, scene, stop, force)?.map(|view| Session {
            board,
            on_screen: args.on_screen(),
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
