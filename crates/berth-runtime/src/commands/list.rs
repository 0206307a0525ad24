//! `list`.

use anyhow::Result;
use clap::Args;

use runtime::state::Root;

/// `list`'s flags.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
    /// Print only the ids.
    #[arg(short, long)]
    quiet: bool,
}

/// `list`.
pub fn list(root: &Root, args: ListArgs) -> Result<i32> {
    let states = runtime::container::list(root)?;
    if args.quiet {
        for s in &states {
            println!("{}", s.id);
        }
    } else if args.format == "json" {
        println!("{}", serde_json::to_string(&states)?);
    } else {
        let mut rows = vec![[
            "ID".to_string(),
            "PID".into(),
            "STATUS".into(),
            "BUNDLE".into(),
            "CREATED".into(),
            "OWNER".into(),
        ]];
        for s in &states {
            rows.push([
                s.id.clone(),
                s.pid.to_string(),
                s.status.to_string(),
                s.bundle.display().to_string(),
                s.created.clone(),
                if s.owner.is_empty() {
                    "root".into()
                } else {
                    s.owner.clone()
                },
            ]);
        }
        print_table(&rows);
    }
    Ok(0)
}

/// Prints rows as columns padded with spaces, like Go's tabwriter.
pub fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}", width = widths[i] + 3));
            }
        }
        println!("{}", line.trim_end());
    }
}
