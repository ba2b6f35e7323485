//! The view's own thread: it owns the terminal (raw mode, the alternate
//! screen), lets its [`Scene`] sample and draw 10 times a second, and reads
//! keys: `q` or Ctrl-C asks for a safe stop, a second one forces the end.
//! It never blocks the load: a scene only reads shared totals. The terminal
//! is restored on every exit path: the end of the run, an error, a panic
//! (a hook), a forced stop.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::layout::Rect;
use ratatui::Frame;
use ratatui::{Terminal, TerminalOptions, Viewport};

use super::cast::Cast;

/// What a view shows: sampled, then drawn, once per frame.
pub trait Scene: Send + 'static {
    /// Reads the shared totals (called once per frame, before drawing).
    fn sample(&mut self);
    /// Draws the latest sample.
    fn draw(&self, frame: &mut Frame);
    /// The user asked for a safe stop (the first `q` or Ctrl-C).
    fn stopping(&mut self);
}

/// Time between frames (and samples).
pub const FRAME: Duration = Duration::from_millis(100);
/// How long the last frame (with the verdict) stays up on screen.
const HOLD: Duration = Duration::from_millis(1500);
/// The screen a cast is drawn on when there is no terminal to take it from.
pub const CAST_SIZE: (u16, u16) = (110, 30);

/// True while this process has the terminal in raw mode and on the
/// alternate screen (the panic hook restores it only then).
static ON_SCREEN: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Where the view draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// The terminal (and the cast, if one is recorded).
    Terminal,
    /// Only the cast: stdout is not a terminal or the view is off.
    CastOnly,
}

/// Whether stdout can take the view.
pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// Puts the terminal back as it was.
pub fn restore() {
    if ON_SCREEN.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
    }
}

fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// Bytes for the screen and, frame by frame, for the cast.
struct Tee {
    screen: Option<io::Stdout>,
    cast: Option<Cast>,
    frame: Vec<u8>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(s) = self.screen.as_mut() {
            s.write_all(buf)?;
        }
        if self.cast.is_some() {
            self.frame.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(s) = self.screen.as_mut() {
            s.flush()?;
        }
        if let Some(c) = self.cast.as_mut() {
            if !self.frame.is_empty() {
                c.frame(&self.frame)?;
                self.frame.clear();
            }
        }
        Ok(())
    }
}

/// The running view; [`View::finish`] ends it.
pub struct View {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

/// What the view needs besides its scene.
pub struct ViewSetup {
    pub screen: Screen,
    /// Columns and rows drawn.
    pub size: (u16, u16),
    pub cast: Option<Cast>,
    /// The first `q`/Ctrl-C: the safe stop.
    pub stop: Box<dyn Fn() + Send>,
    /// A second `q`/Ctrl-C: the forced end (after the terminal is restored).
    pub force: Box<dyn Fn() + Send>,
}

impl View {
    /// Takes the terminal (or opens only the cast) and starts drawing.
    pub fn start(scene: impl Scene, setup: ViewSetup) -> io::Result<View> {
        let on_screen = setup.screen == Screen::Terminal;
        let (w, h) = setup.size;
        let ViewSetup {
            stop, force, cast, ..
        } = setup;
        if on_screen {
            install_panic_hook();
            terminal::enable_raw_mode()?;
            ON_SCREEN.store(true, Ordering::SeqCst);
            if let Err(e) = execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide) {
                restore();
                return Err(e);
            }
        }
        let tee = Tee {
            screen: on_screen.then(io::stdout),
            cast,
            frame: Vec::new(),
        };
        let viewport = if on_screen {
            Viewport::Fullscreen
        } else {
            Viewport::Fixed(Rect::new(0, 0, w, h))
        };
        let term = match Terminal::with_options(
            CrosstermBackend::new(tee),
            TerminalOptions { viewport },
        ) {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(e);
            }
        };
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let thread = std::thread::Builder::new()
            .name("live-view".into())
            .spawn(move || {
                let keys = Keys {
                    stop,
                    force,
                    asked: false,
                };
                let r = run(term, scene, &d, on_screen, keys);
                restore();
                r
            })?;
        Ok(View {
            done,
            thread: Some(thread),
        })
    }

    /// Draws the last frame, holds it a moment, restores the terminal.
    pub fn finish(mut self) -> io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> io::Result<()> {
        self.done.store(true, Ordering::SeqCst);
        let r = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the live view panicked")),
            None => Ok(()),
        };
        restore();
        r
    }
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The keys' two meanings.
struct Keys {
    stop: Box<dyn Fn() + Send>,
    force: Box<dyn Fn() + Send>,
    asked: bool,
}

fn run(
    mut term: Terminal<CrosstermBackend<Tee>>,
    mut scene: impl Scene,
    done: &AtomicBool,
    on_screen: bool,
    mut keys: Keys,
) -> io::Result<()> {
    let mut last_frame = false;
    loop {
        let tick = Instant::now();
        // Read before drawing: the last frame must show the finished run.
        let ending = done.load(Ordering::SeqCst);
        scene.sample();
        term.draw(|f| scene.draw(f))?;
        if last_frame {
            return Ok(());
        }
        if ending {
            // Once more after the hold, so the cast ends on this frame too.
            last_frame = true;
            if on_screen {
                std::thread::sleep(HOLD);
            }
            continue;
        }
        let next = tick + FRAME;
        if on_screen {
            keys_until(next, &mut scene, &mut keys)?;
        } else {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }
}

/// Reads keys until `next`: the first `q`/Ctrl-C asks for the safe stop, a
/// second one forces the end.
fn keys_until(next: Instant, scene: &mut impl Scene, keys: &mut Keys) -> io::Result<()> {
    loop {
        let left = next.saturating_duration_since(Instant::now());
        if left.is_zero() || !event::poll(left)? {
            return Ok(());
        }
        if let Event::Key(k) = event::read()? {
            let ctrl_c =
                k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
            if k.kind == KeyEventKind::Press && (k.code == KeyCode::Char('q') || ctrl_c) {
                if keys.asked {
                    restore();
                    (keys.force)();
                }
                keys.asked = true;
                scene.stopping();
                (keys.stop)();
            }
        }
    }
}
