//! Socket options that neither tokio nor socket2 offers.

use tokio::net::TcpStream;

/// Asks the kernel to report `socket` readable only once `bytes` are
/// queued (`SO_RCVLOWAT`), or when the peer closes or the connection
/// fails, whichever comes first; 1 is the default. Lowering it wakes a
/// waiting reader at once if enough is already there (Linux re-checks on
/// the option's change). Best effort: false where the system does not
/// take it (Windows has no such option), and the caller reads as before.
pub fn set_recv_lowat(socket: &TcpStream, bytes: usize) -> bool {
    imp::set_recv_lowat(socket, bytes)
}

#[cfg(unix)]
#[allow(unsafe_code)]
mod imp {
    use std::os::fd::AsRawFd;
    use tokio::net::TcpStream;

    pub fn set_recv_lowat(socket: &TcpStream, bytes: usize) -> bool {
        let value = libc::c_int::try_from(bytes.max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: the descriptor belongs to `socket`, open for this whole
        // call; the option's value is a c_int read from a live local of
        // exactly the size passed.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&raw const value).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    }
}

#[cfg(not(unix))]
mod imp {
    use tokio::net::TcpStream;

    pub fn set_recv_lowat(_socket: &TcpStream, _bytes: usize) -> bool {
        false
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// Bytes below the mark do not make the socket readable (within a
    /// fifth of a second: a kernel that ignored the mark would report it at
    /// once); reaching the mark does, and so does lowering it.
    #[tokio::test]
    async fn a_reader_is_woken_by_the_mark_reached_or_lowered() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let below = Duration::from_millis(200);
        let deadline = Duration::from_secs(30);
        let mut buf = [0u8; 4096];
        let mut drain = async |want: usize| {
            let mut got = 0;
            while got < want {
                tokio::time::timeout(deadline, client.readable())
                    .await
                    .expect("readable")
                    .unwrap();
                match client.try_read(&mut buf) {
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
            }
            // Read to the end of what is there, so that readiness is
            // cleared.
            assert_eq!(
                client.try_read(&mut buf).unwrap_err().kind(),
                std::io::ErrorKind::WouldBlock
            );
            got
        };
        assert!(set_recv_lowat(&client, 1000));
        server.write_all(&[b'x'; 10]).await.unwrap();
        assert!(
            tokio::time::timeout(below, client.readable())
                .await
                .is_err()
        );
        server.write_all(&[b'y'; 990]).await.unwrap();
        assert_eq!(drain(1000).await, 1000);
        server.write_all(&[b'z'; 10]).await.unwrap();
        assert!(
            tokio::time::timeout(below, client.readable())
                .await
                .is_err()
        );
        assert!(set_recv_lowat(&client, 1));
        assert_eq!(drain(10).await, 10);
    }
}
