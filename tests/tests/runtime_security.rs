//! Defences checked as a container's own processes would attack them: the file the runtime's
//! init runs from, seen as `/proc/1/exe` from inside a created container, cannot be rewritten
//! once the container starts (the class of CVE-2019-5736).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use berth_tests::wait::file_contains;
use berth_tests::{Bundle, Runtime};

const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> Runtime {
    Runtime::new().expect("the runtime under test (see the berth-tests crate doc)")
}

/// The attacker, run with `exec -d` in a created container: get hold of the runtime's waiting
/// init through /proc/1/exe, wait until the init has become the user's program (so the
/// runtime's image no longer runs and ETXTBSY no longer guards it), then try to append to the
/// held file. It reports each step in $OUT. (A failed redirection on `exec` ends a script, so
/// the open is tried in a subshell first.)
const ATTACK: &str = r#"
if ! (exec 3</proc/1/exe) 2>/dev/null; then echo open-refused > "$OUT"; exit 0; fi
exec 3</proc/1/exe
echo opened > "$OUT"
while [ "$(cat /proc/1/comm)" != sleep ]; do usleep 10000; done
if echo x >> /proc/self/fd/3; then echo WROTE >> "$OUT"; else echo write-refused >> "$OUT"; fi
"#;

#[test]
fn a_container_cannot_rewrite_the_runtime_through_proc_one_exe() {
    let b = Bundle::new()
        .expect("a busybox bundle")
        .args(&["sleep", "1000"]);
    // The attack runs against a private copy of the runtime, so that a vulnerable runtime
    // damages only the copy.
    let under_test = runtime();
    let name = under_test
        .binary()
        .file_name()
        .expect("a file name")
        .to_owned();
    let copy = under_test.scratch().join(name);
    fs::copy(under_test.binary(), &copy).expect("copy the runtime binary");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).expect("chmod");
    let before = fs::read(&copy).expect("read the copy");
    let rt = Runtime::with_binary(&copy).expect("the copy runs");

    let out_dir = rt.scratch().join("attack");
    fs::create_dir(&out_dir).expect("mkdir");
    let b = b.bind(&out_dir, "/attack", false);
    let id = rt.new_id("exe");
    rt.create(&id, &b)
        .expect("create")
        .ok()
        .expect("create succeeds");
    let report = out_dir.join("report");
    fs::write(&report, "").expect("touch the report");
    rt.exec_with(
        &id,
        &["-d", "--env", "OUT=/attack/report", "--env", "PATH=/bin"],
        &["sh", "-c", ATTACK],
    )
    .expect("exec the attacker")
    .ok()
    .expect("exec -d into a created container succeeds");
    let first = file_contains(&report, "\n", WAIT).expect("the attacker reports its open");
    rt.start(&id).expect("start").ok().expect("start succeeds");
    if first.starts_with("opened") {
        let text = file_contains(&report, "-refused\n", WAIT)
            .or_else(|_| file_contains(&report, "WROTE", WAIT))
            .expect("the attacker reports its write");
        eprintln!("attacker: {text:?}");
        assert!(
            !text.contains("WROTE"),
            "a container process rewrote the file its init ran from: {text}"
        );
    } else {
        assert_eq!(
            first, "open-refused\n",
            "the attacker could not hold /proc/1/exe"
        );
    }
    assert!(
        fs::read(&copy).expect("read the copy") == before,
        "the runtime binary is unchanged"
    );
}

#[test]
fn a_shebang_to_proc_self_exe_neither_reaches_the_runtime_binary_nor_hangs() {
    // The CVE-2019-5736 entry point: a container program whose interpreter is /proc/self/exe
    // makes the kernel execute whatever the init runs from. A defended runtime resolves that
    // to nothing (runc: ENOENT) or to a private sealed copy; either way `run` must end, and
    // the binary on the host must be unchanged.
    let b = Bundle::new().expect("a busybox bundle").args(&["/evil"]);
    fs::write(b.rootfs().join("evil"), "#!/proc/self/exe\n").expect("write the script");
    fs::set_permissions(b.rootfs().join("evil"), fs::Permissions::from_mode(0o755)).expect("chmod");
    let under_test = runtime();
    let name = under_test
        .binary()
        .file_name()
        .expect("a file name")
        .to_owned();
    let copy = under_test.scratch().join(name);
    fs::copy(under_test.binary(), &copy).expect("copy the runtime binary");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).expect("chmod");
    let before = fs::read(&copy).expect("read the copy");
    let rt = Runtime::with_binary(&copy).expect("the copy runs");
    let id = rt.new_id("shebang");
    let options = berth_tests::runtime::Invocation {
        timeout: Some(Duration::from_secs(20)),
        ..Default::default()
    };
    let out = rt
        .run_with(&id, &b, &[], &options)
        .expect("run ends within 20 s");
    eprintln!("{out:?}");
    assert!(
        fs::read(&copy).expect("read the copy") == before,
        "the runtime binary is unchanged"
    );
}
