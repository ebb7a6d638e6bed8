//! The three ways a message leaves: unix datagram, UDP, TCP.

use std::io;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket, UnixDatagram};

use super::rfc5424::octet_frame;
use crate::config::SyslogTarget;

pub(crate) enum Conn {
    Unix(UnixDatagram),
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Conn {
    pub(crate) async fn connect(target: &SyslogTarget) -> io::Result<Conn> {
        match target {
            SyslogTarget::Unix(path) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                Ok(Conn::Unix(s))
            }
            SyslogTarget::Udp(address) => {
                let addr = resolve(address).await?;
                let local = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(local).await?;
                s.connect(addr).await?;
                Ok(Conn::Udp(s))
            }
            SyslogTarget::Tcp(address) => {
                let addr = resolve(address).await?;
                let s = TcpStream::connect(addr)
                    .await
                    .map_err(|e| io::Error::new(e.kind(), format!("{addr}: {e}")))?;
                s.set_nodelay(true)?;
                Ok(Conn::Tcp(s))
            }
        }
    }

    /// One message: one datagram, or one octet-counted frame on the stream.
    pub(crate) async fn send(&mut self, msg: &str) -> io::Result<()> {
        let whole = |n: usize| {
            if n == msg.len() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "datagram truncated",
                ))
            }
        };
        match self {
            Conn::Unix(s) => whole(s.send(msg.as_bytes()).await?),
            Conn::Udp(s) => whole(s.send(msg.as_bytes()).await?),
            Conn::Tcp(s) => {
                // A receiver that closed its side would swallow what we write
                // next; notice it first and reconnect instead.
                if peer_closed(s)? {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the syslog server closed the connection",
                    ));
                }
                s.write_all(&octet_frame(msg)).await
            }
        }
    }
}

fn peer_closed(s: &TcpStream) -> io::Result<bool> {
    let mut buf = [0u8; 256];
    match s.try_read(&mut buf) {
        Ok(0) => Ok(true),
        // Servers do not talk on this protocol; ignore what one says.
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

async fn resolve(address: &str) -> io::Result<std::net::SocketAddr> {
    tokio::net::lookup_host(address)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("{address}: {e}")))?
        .next()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{address}: no address found"),
            )
        })
}
