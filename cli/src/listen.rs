//! The listening socket every server here binds (the app's, the edge's).
//!
//! A run's first moments, or a stall that makes a client open more
//! connections, bring a burst of connects at once. With the 128-deep accept
//! queue the listener got by default, the 129th SYN was dropped and its
//! client waited for the kernel's 1 s SYN retransmit: `migrator demo --rate
//! 10000` showed ~40 `ListenOverflows` per run and replies of 1,045 ms at
//! the start. The kernel caps the depth at `net.core.somaxconn`.

use std::io;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpSocket};

/// Accept-queue depth asked for (nginx and HAProxy ask for about as much).
pub const BACKLOG: u32 = 4096;

/// Binds `addr` (address reuse on, as `TcpListener::bind` does) with a
/// [`BACKLOG`]-deep accept queue.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_connects_is_queued_not_dropped() -> io::Result<()> {
        let listener = listen("127.0.0.1:0".parse().map_err(io::Error::other)?)?;
        let addr = listener.local_addr()?;
        // More than the old 128 before anything is accepted.
        let mut clients = Vec::new();
        for _ in 0..300 {
            clients.push(tokio::net::TcpStream::connect(addr).await?);
        }
        for _ in 0..300 {
            listener.accept().await?;
        }
        Ok(())
    }
}
