//! `run` of a process with `terminal: true` and no `--console-socket`: the
//! runtime allocates the pty and copies it to and from its own stdio, as runc
//! does in a terminal, so `spec` then `run` works in a shell. berth also
//! copies when its stdin is a pipe (input then ends with the terminal's ^D);
//! runc 1.1.5 copies nothing in that case, which the test asserts as runc's
//! gap.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_tests::{Bundle, HostSnapshot, Runtime};

#[test]
fn run_with_a_terminal_proxies_the_pty_and_returns_the_exit_status() {
    let rt = Runtime::new().expect("the runtime under test");
    let id = rt.new_id("tty");
    let b = Bundle::new()
        .expect("a busybox bundle")
        .terminal(true)
        .args(&["sh"]);
    b.write_config(&id).expect("write config.json");
    let before = HostSnapshot::take(Some(&rt), &[id.as_str()], &[]);
    let mut child = Command::new(rt.binary())
        .arg("--root")
        .arg(rt.root())
        .args(["run", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start run");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"tty; echo marker-$((40+2)); exit 3\n")
        .expect("type into the terminal");
    // Bounded wait for the exit (the pipe's end-of-file reaches the shell as ^D).
    berth_tests::wait::process_exit(child.id() as i32, Duration::from_secs(20))
        .expect("run returns within 20 s");
    let out = child.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    if !rt.is_berth() {
        // runc 1.1.5 with a pipe for stdin: nothing is copied (its gap).
        assert!(!text.contains("marker-42"), "{text:?}");
        before.assert_clean();
        return;
    }
    assert!(
        text.contains("/dev/pts/"),
        "the shell's stdin is a pty: {text:?}"
    );
    assert!(
        text.contains("marker-42"),
        "the shell's output comes through: {text:?}"
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "run exits with the container's status; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    before.assert_clean();
}
