//! The `storage` section (issue 14): a 100 MB file uploaded through an upload URL and
//! downloaded from its file URL, in MB/s, beside `cp` of the same file on the same disk
//! (the ratio is the figure we track), and the server's peak memory while it happens.

use std::io::Read as _;
use std::time::Instant;

use super::{ADMIN_KEY, KilnServer, peak_memory_mib};

const FILE_BYTES: usize = 100 << 20;

fn mb_per_s(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / 1e6 / seconds
}

pub fn storage_figures(kiln: &KilnServer) -> anyhow::Result<()> {
    println!("== storage: a 100 MB file ==");
    let scratch = tempfile::tempdir_in(kiln.data_dir())?;
    let source = scratch.path().join("source.bin");
    let bytes: Vec<u8> = (0..FILE_BYTES).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&source, &bytes)?;
    drop(bytes);
    let memory_before = peak_memory_mib(kiln)?;

    let copied = Instant::now();
    let status = std::process::Command::new("cp")
        .arg(&source)
        .arg(scratch.path().join("copy.bin"))
        .status()?;
    anyhow::ensure!(status.success(), "cp failed");
    let cp_seconds = copied.elapsed().as_secs_f64();

    let url = kiln.call(
        "/api/mutation",
        r#"{"path":"photos:generateUploadUrl","args":{}}"#,
    )?["value"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no upload URL"))?
        .to_string();
    let uploaded = Instant::now();
    let mut response = ureq::post(&url)
        .header("Content-Type", "application/octet-stream")
        .send(ureq::SendBody::from_reader(&mut std::fs::File::open(
            &source,
        )?))?;
    let answer: serde_json::Value = serde_json::from_str(&response.body_mut().read_to_string()?)?;
    let upload_seconds = uploaded.elapsed().as_secs_f64();
    let storage_id = answer["storageId"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("upload failed: {answer}"))?;

    let downloaded = Instant::now();
    let mut response = ureq::get(format!("http://{}/api/storage/{storage_id}", kiln.address))
        .header("Authorization", format!("Convex {ADMIN_KEY}"))
        .call()?;
    let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
    let mut buffer = vec![0u8; 1 << 20];
    let mut received = 0;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        received += read;
    }
    let download_seconds = downloaded.elapsed().as_secs_f64();
    anyhow::ensure!(received == FILE_BYTES, "downloaded {received} bytes");

    let cp = mb_per_s(FILE_BYTES, cp_seconds);
    let upload = mb_per_s(FILE_BYTES, upload_seconds);
    let download = mb_per_s(FILE_BYTES, download_seconds);
    println!(
        "cp {cp:.0} MB/s   upload {upload:.0} MB/s (ratio to cp {:.2})   download {download:.0} MB/s (ratio to cp {:.2})",
        upload / cp,
        download / cp
    );
    println!(
        "server peak memory: {:.0} MiB before, {:.0} MiB after (a file is never held whole)",
        memory_before,
        peak_memory_mib(kiln)?
    );
    Ok(())
}
