//! The parts the conductor starts as child processes of the same binary.

pub mod app;
pub mod emitter;
pub mod inbox_app;
pub mod load;
pub mod orders;
pub mod publisher;
pub mod raw_loop;
pub mod receiver;
pub mod sidecar;

use serde::Serialize;

/// Prints one JSON line on stdout (the conductor reads it) and flushes.
pub fn report(value: &impl Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Resolves when the conductor closes our stdin (or goes away): the signal to stop.
pub async fn stdin_closed() {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
