//! The NCCL unique id from rank 0 to every rank over TCP, for GPU jobs started without MPI
//! (torchrun, srun): rank 0 listens on `MASTER_PORT` and each other rank connects to
//! `MASTER_ADDR:MASTER_PORT`. Only the 128-byte id travels here; every collective runs in
//! NCCL.
//!
//! A client sends a magic tag, the world size and its rank; rank 0 answers with the tag and the
//! id once it has checked them, so a rank of another job (another world size) or a rank seen
//! twice is refused instead of joining the wrong group. Both sides give up at the deadline,
//! naming the ranks that never arrived or the address that never answered.

use crate::{Error, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const MAGIC: &[u8; 8] = b"SIMCLRv1";
const OP: &str = "rendezvous";

fn err(msg: String) -> Error {
    Error::device(OP, msg)
}

/// Rank 0's `id` on every rank (`id` is ignored on the others).
pub fn share_id(
    rank: usize,
    world: usize,
    host: &str,
    port: u16,
    id: [u8; 128],
    timeout: Duration,
) -> Result<[u8; 128]> {
    let deadline = Instant::now() + timeout;
    if rank == 0 {
        serve(world, port, id, deadline).map(|_| id)
    } else {
        fetch(rank, world, host, port, deadline)
    }
}

fn serve(world: usize, port: u16, id: [u8; 128], deadline: Instant) -> Result<()> {
    let listener = TcpListener::bind(("0.0.0.0", port))
        .map_err(|e| err(format!("rank 0 cannot listen on MASTER_PORT={port}: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| err(e.to_string()))?;
    let mut seen = vec![false; world];
    seen[0] = true;
    while seen.iter().any(|s| !s) {
        match listener.accept() {
            Ok((mut s, peer)) => {
                s.set_nonblocking(false).map_err(|e| err(e.to_string()))?;
                s.set_read_timeout(Some(Duration::from_secs(10)))
                    .map_err(|e| err(e.to_string()))?;
                let mut hello = [0u8; 16];
                s.read_exact(&mut hello)
                    .map_err(|e| err(format!("reading a rank's hello from {peer}: {e}")))?;
                let num = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap()) as usize;
                let (w, r) = (num(&hello[8..12]), num(&hello[12..16]));
                if &hello[..8] != MAGIC || w != world || r == 0 || r >= world || seen[r] {
                    return Err(err(format!(
                        "{peer} claims rank {r} of a world of {w}; this job is a world of \
                         {world} (another job on MASTER_PORT={port}, or a rank started twice?)"
                    )));
                }
                seen[r] = true;
                let mut reply = MAGIC.to_vec();
                reply.extend_from_slice(&id);
                s.write_all(&reply)
                    .map_err(|e| err(format!("sending the id to rank {r}: {e}")))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    let missing: Vec<usize> = (0..world).filter(|&r| !seen[r]).collect();
                    return Err(err(format!(
                        "rank 0 waited on MASTER_PORT={port} past the timeout; ranks {missing:?} never connected"
                    )));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(err(format!("accept on MASTER_PORT={port}: {e}"))),
        }
    }
    Ok(())
}

fn fetch(rank: usize, world: usize, host: &str, port: u16, deadline: Instant) -> Result<[u8; 128]> {
    let mut hello = MAGIC.to_vec();
    hello.extend_from_slice(&(world as u32).to_le_bytes());
    hello.extend_from_slice(&(rank as u32).to_le_bytes());
    loop {
        let attempt = || -> std::io::Result<[u8; 128]> {
            let addr = (host, port).to_socket_addrs()?.next().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "no address for the host")
            })?;
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            s.set_read_timeout(Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(10)),
            ))?;
            s.write_all(&hello)?;
            let mut reply = [0u8; 136];
            s.read_exact(&mut reply)?;
            if &reply[..8] != MAGIC {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a simclr rendezvous",
                ));
            }
            Ok(reply[8..].try_into().unwrap())
        };
        match attempt() {
            Ok(id) => return Ok(id),
            Err(e) if Instant::now() > deadline => {
                return Err(err(format!(
                    "rank {rank} got no NCCL id from rank 0 at MASTER_ADDR={host} MASTER_PORT={port} before the timeout: {e}"
                )))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port() -> u16 {
        TcpListener::bind(("127.0.0.1", 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn every_rank_gets_rank_zeros_id() {
        let port = free_port();
        let id: [u8; 128] = std::array::from_fn(|i| (i * 7 + 3) as u8);
        let t = Duration::from_secs(20);
        let got: Vec<[u8; 128]> = std::thread::scope(|s| {
            // Clients first: they must retry until rank 0 listens.
            let hs: Vec<_> = (1..4)
                .map(|r| s.spawn(move || share_id(r, 4, "127.0.0.1", port, [0; 128], t)))
                .collect();
            std::thread::sleep(Duration::from_millis(100));
            let zero = share_id(0, 4, "127.0.0.1", port, id, t).unwrap();
            let mut all = vec![zero];
            all.extend(hs.into_iter().map(|h| h.join().unwrap().unwrap()));
            all
        });
        assert!(got.iter().all(|g| *g == id));
    }

    #[test]
    fn a_missing_rank_is_named_at_the_deadline() {
        let port = free_port();
        let t = Duration::from_millis(300);
        let e = std::thread::scope(|s| {
            let h = s.spawn(move || share_id(1, 3, "127.0.0.1", port, [0; 128], t));
            let e = share_id(0, 3, "127.0.0.1", port, [1; 128], t).unwrap_err();
            h.join().unwrap().unwrap();
            e.to_string()
        });
        assert!(e.contains("ranks [2] never connected"), "{e}");
    }

    #[test]
    fn a_rank_of_another_world_is_refused() {
        let port = free_port();
        let t = Duration::from_secs(5);
        let e = std::thread::scope(|s| {
            let h = s.spawn(move || share_id(1, 3, "127.0.0.1", port, [0; 128], t));
            let e = share_id(0, 2, "127.0.0.1", port, [1; 128], t).unwrap_err();
            assert!(h.join().unwrap().is_err());
            e.to_string()
        });
        assert!(e.contains("claims rank 1 of a world of 3"), "{e}");
    }

    #[test]
    fn no_rank_zero_ends_at_the_deadline() {
        let port = free_port();
        let e = share_id(
            2,
            3,
            "127.0.0.1",
            port,
            [0; 128],
            Duration::from_millis(200),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("rank 2 got no NCCL id") && e.contains(&port.to_string()),
            "{e}"
        );
    }
}
