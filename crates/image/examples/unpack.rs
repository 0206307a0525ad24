//! Applies one layer blob (tar, gzip or zstd) to an empty directory with the image crate's
//! unpacker — the code a pull and a load run per layer: decompression, the diff ID's SHA-256
//! over the tar stream, whiteouts, ownership, modes, xattrs, links, and the refusal of any entry
//! that would land outside the directory — and prints the diff ID and the counts. For
//! bench/unpack.sh, which sets it beside plain `tar -x` of the same layers.
//!
//! ```text
//! cargo run --release -p image --example unpack -- LAYER DEST
//! ```

use image::unpack::Writeback;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [layer, dest] = args.as_slice() else {
        eprintln!("usage: unpack LAYER DEST (DEST an existing empty directory)");
        return ExitCode::from(2);
    };
    let blob = match File::open(layer) {
        Ok(f) => BufReader::with_capacity(1 << 20, f),
        Err(e) => {
            eprintln!("unpack: open {layer}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // As a pull or load unpacks: the flush to disk comes later (a settle).
    match image::unpack::apply_layer_with(blob, &PathBuf::from(dest), &mut |_| {}, Writeback::Lazy)
    {
        Ok(stats) => {
            println!(
                "{} {:?} {} bytes in {} entries",
                stats.diff_id, stats.compression, stats.size, stats.entries
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("unpack: {layer}: {e}");
            ExitCode::FAILURE
        }
    }
}
