//! The command line's verbs as a user drives them: `state` through a container's life, `list`,
//! `ps`, `kill` by name and number and `--all`, `pause`/`resume`, `events --stats`, `run` and
//! `run -d`, `delete --force`, `spec`, `features`, and a full cycle that leaves the host clean.

use std::fs;
use std::time::Duration;

use berth_tests::runtime::Invocation;
use berth_tests::wait::{file_contains, is_alive};
use berth_tests::{Bundle, Flavor, HostSnapshot, Runtime};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> Runtime {
    Runtime::new().expect("the runtime under test (see the berth-tests crate doc)")
}

fn bundle() -> Bundle {
    Bundle::new().expect("a busybox bundle")
}

fn sleeper() -> Bundle {
    bundle().args(&["sleep", "1000"])
}

#[test]
fn state_follows_created_running_stopped() {
    let b = sleeper();
    let rt = runtime();
    let id = rt.new_id("state");
    rt.create(&id, &b)
        .expect("create")
        .ok()
        .expect("create succeeds");
    let state = rt.state(&id).expect("state");
    assert!(
        state["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{state}"
    );
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["status"], "created");
    let pid = state["pid"].as_i64().expect("a pid while created");
    assert!(
        pid > 0 && is_alive(pid as i32),
        "the init waits to be started: {state}"
    );
    assert_eq!(
        state["bundle"],
        b.path().to_string_lossy().as_ref(),
        "the absolute bundle path"
    );

    rt.start(&id).expect("start").ok().expect("start succeeds");
    let state = rt.state(&id).expect("state");
    assert_eq!(state["status"], "running");
    assert_eq!(
        state["pid"].as_i64(),
        Some(pid),
        "the same init runs the user's process"
    );

    rt.kill(&id, "KILL")
        .expect("kill")
        .ok()
        .expect("kill succeeds");
    rt.wait_exit(pid as i32, WAIT).expect("the init exits");
    assert_eq!(rt.status(&id).expect("state"), "stopped");

    rt.delete(&id)
        .expect("delete")
        .ok()
        .expect("delete succeeds");
    let gone = rt.invoke(&["state", &id]).expect("state");
    assert!(
        !gone.success(),
        "state of a deleted container fails: {gone:?}"
    );
}

#[test]
fn start_of_a_running_container_fails() {
    let b = sleeper();
    let rt = runtime();
    let id = rt.new_id("restart");
    rt.create_and_start(&id, &b).expect("create and start");
    let again = rt.start(&id).expect("start");
    assert!(!again.success(), "a second start is refused: {again:?}");
    let dup = rt.create(&id, &b).expect("create");
    assert!(!dup.success(), "an id in use is refused: {dup:?}");
    assert_eq!(
        rt.status(&id).expect("state"),
        "running",
        "the refusals left it running"
    );
}

#[test]
fn list_shows_containers_in_table_and_json() {
    let b = sleeper();
    let rt = runtime();
    let created = rt.new_id("listc");
    let running = rt.new_id("listr");
    rt.create(&created, &b)
        .expect("create")
        .ok()
        .expect("create succeeds");
    rt.create_and_start(&running, &b).expect("create and start");

    let table = rt.list().expect("list").ok().expect("list succeeds");
    let header = table.stdout.lines().next().expect("a header line");
    for column in ["ID", "PID", "STATUS", "BUNDLE", "CREATED"] {
        assert!(header.contains(column), "column {column} in {header:?}");
    }
    for (id, status) in [(&created, "created"), (&running, "running")] {
        let row = table
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id.as_str()));
        let row = row.unwrap_or_else(|| panic!("{id} listed: {table:?}"));
        assert!(
            row.split_whitespace().any(|w| w == status),
            "{id} is {status}: {row}"
        );
    }

    let json = rt.list_json().expect("list --format json");
    let items = json.as_array().expect("a JSON array");
    assert_eq!(items.len(), 2, "{json}");
    for (id, status) in [(&created, "created"), (&running, "running")] {
        let item = items
            .iter()
            .find(|i| i["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} in {json}"));
        assert_eq!(item["status"], status);
        assert!(item["pid"].as_i64().is_some_and(|p| p > 0));
        assert_eq!(item["bundle"], b.path().to_string_lossy().as_ref());
    }

    let quiet = rt
        .invoke(&["list", "-q"])
        .expect("list -q")
        .ok()
        .expect("list -q succeeds");
    let mut ids: Vec<&str> = quiet.stdout.lines().collect();
    ids.sort_unstable();
    let mut want = vec![created.as_str(), running.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
}

#[test]
fn ps_lists_the_containers_processes() {
    let b = bundle().shell("sleep 1000 & sleep 1001 & echo ready; wait");
    let rt = runtime();
    let id = rt.new_id("ps");
    let pid = rt
        .start_until(&id, &b, "ready")
        .expect("create, start, both sleeps forked");
    let json = rt.ps_json(&id).expect("ps --format json");
    let pids: Vec<i64> = json
        .as_array()
        .expect("a JSON array of pids")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert!(pids.contains(&i64::from(pid)), "the init {pid} in {json}");
    assert_eq!(pids.len(), 3, "the shell and its two sleeps: {json}");
    let table = rt.ps(&id).expect("ps").ok().expect("ps succeeds");
    assert!(
        table
            .stdout
            .lines()
            .next()
            .is_some_and(|h| h.contains("PID")),
        "a ps header: {table:?}"
    );
    assert!(table.stdout.contains("sleep 1001"), "{table:?}");
}

/// Starts a container whose init traps SIGTERM (pid 1 ignores signals it has no handler for)
/// and says "ready" once the trap is set.
fn start_term_trapper(rt: &Runtime, b: &Bundle, tag: &str) -> (String, i32) {
    let id = rt.new_id(tag);
    let pid = rt
        .start_until(&id, b, "ready")
        .expect("create, start, the trap set");
    (id, pid)
}

#[test]
fn kill_takes_signal_names_and_numbers() {
    let sleeper = sleeper();
    let trapper = bundle().shell("trap 'exit 0' TERM; echo ready; sleep 1000 & wait");
    let rt = runtime();
    for signal in ["KILL", "SIGKILL", "9"] {
        let id = rt.new_id("kill");
        let pid = rt
            .create_and_start(&id, &sleeper)
            .expect("create and start");
        rt.kill(&id, signal)
            .expect("kill")
            .ok()
            .unwrap_or_else(|e| panic!("kill {signal}: {e}"));
        rt.wait_exit(pid, WAIT)
            .unwrap_or_else(|e| panic!("kill {signal}: {e}"));
        assert_eq!(rt.status(&id).expect("state"), "stopped");
        rt.delete(&id)
            .expect("delete")
            .ok()
            .expect("delete succeeds");
    }
    for signal in ["TERM", "SIGTERM", "15"] {
        let (id, pid) = start_term_trapper(&rt, &trapper, "term");
        rt.kill(&id, signal)
            .expect("kill")
            .ok()
            .unwrap_or_else(|e| panic!("kill {signal}: {e}"));
        rt.wait_exit(pid, WAIT)
            .unwrap_or_else(|e| panic!("kill {signal}: {e}"));
        rt.delete(&id)
            .expect("delete")
            .ok()
            .expect("delete succeeds");
    }
    let id = rt.new_id("killbad");
    rt.create_and_start(&id, &sleeper)
        .expect("create and start");
    let bad = rt.kill(&id, "SIGNOTASIGNAL").expect("kill");
    assert!(!bad.success(), "an unknown signal is refused: {bad:?}");
    assert_eq!(rt.status(&id).expect("state"), "running");
}

#[test]
fn kill_all_reaches_every_process() {
    // KILL to the init alone would take its children with the pid namespace; --all signals
    // each process itself, which the test sees as each pid exiting.
    let b = bundle().shell("sleep 1000 & sleep 1001 & echo ready; wait");
    let rt = runtime();
    let id = rt.new_id("killall");
    rt.start_until(&id, &b, "ready")
        .expect("create, start, both sleeps forked");
    let pids: Vec<i32> = rt
        .ps_json(&id)
        .expect("ps")
        .as_array()
        .expect("pids")
        .iter()
        .filter_map(|p| p.as_i64().and_then(|p| i32::try_from(p).ok()))
        .collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
    rt.kill_all(&id, "KILL")
        .expect("kill --all")
        .ok()
        .expect("kill --all succeeds");
    for pid in &pids {
        rt.wait_exit(*pid, WAIT).expect("every process exits");
    }
    rt.delete(&id)
        .expect("delete")
        .ok()
        .expect("delete succeeds");
}

#[test]
fn pause_and_resume_show_in_state() {
    let b = sleeper();
    let rt = runtime();
    let id = rt.new_id("pause");
    let pid = rt.create_and_start(&id, &b).expect("create and start");
    rt.pause(&id).expect("pause").ok().expect("pause succeeds");
    assert_eq!(rt.status(&id).expect("state"), "paused");
    let freezer = fs::read_to_string(format!("/sys/fs/cgroup/freezer/{id}/freezer.state"))
        .expect("the freezer cgroup");
    assert_eq!(freezer.trim(), "FROZEN", "the v1 freezer holds it");
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("the init's stat");
    assert!(is_alive(pid), "a paused init is alive: {stat}");
    rt.resume(&id)
        .expect("resume")
        .ok()
        .expect("resume succeeds");
    assert_eq!(rt.status(&id).expect("state"), "running");
    let again = rt.resume(&id).expect("resume");
    assert!(
        !again.success(),
        "resuming a running container is refused: {again:?}"
    );
}

#[test]
fn events_stats_report_memory_usage() {
    let b = sleeper();
    let rt = runtime();
    let id = rt.new_id("events");
    rt.create_and_start(&id, &b).expect("create and start");
    let stats = rt.events_stats(&id).expect("events --stats");
    assert_eq!(stats["type"], "stats", "{stats}");
    assert_eq!(stats["id"], id.as_str(), "{stats}");
    let usage = &stats["data"]["memory"]["usage"]["usage"];
    assert!(
        usage.as_u64().is_some_and(|u| u > 0),
        "memory usage in {stats}"
    );
    assert!(
        stats["data"]["pids"]["current"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "pids in {stats}"
    );
}

#[test]
fn run_exits_with_the_containers_status() {
    let rt = runtime();
    let id = rt.new_id("exit");
    let out = rt
        .run(&id, &bundle().shell("echo before; exit 7"))
        .expect("run");
    assert_eq!(out.code, Some(7), "{out:?}");
    assert_eq!(out.stdout, "before\n");
    let ok = rt
        .run(&rt.new_id("exit0"), &bundle().args(&["true"]))
        .expect("run");
    assert_eq!(ok.code, Some(0), "{ok:?}");
    let gone = rt.list_json().expect("list");
    assert!(
        gone.as_array().is_none_or(|a| a.is_empty()),
        "run deletes the container it ran: {gone}"
    );
}

#[test]
fn run_detached_returns_with_the_container_running() {
    let b = bundle().shell("echo detached-ready; exec sleep 1000");
    let rt = runtime();
    let id = rt.new_id("detach");
    let options = Invocation {
        timeout: Some(WAIT),
        ..Invocation::default()
    };
    let out = rt
        .run_with(&id, &b, &["-d"], &options)
        .expect("run -d")
        .ok()
        .expect("run -d succeeds");
    assert_eq!(rt.status(&id).expect("state"), "running");
    file_contains(&out.stdout_path, "detached-ready", WAIT)
        .expect("the container's output reaches run's stdout");
    let pid = rt.pid(&id).expect("pid");
    rt.kill(&id, "KILL")
        .expect("kill")
        .ok()
        .expect("kill succeeds");
    rt.wait_exit(pid, WAIT).expect("exit");
    rt.delete(&id)
        .expect("delete")
        .ok()
        .expect("delete succeeds");
}

/// A refused command says "error" on stderr, as runc's `level=error` line does: callers and
/// youki's contest suite tell a failure by that word as well as by the exit status.
#[test]
fn refused_deletes_say_error_on_stderr() {
    let b = sleeper();
    let rt = runtime();
    let missing = rt.delete("no-such-container").expect("delete");
    assert!(
        !missing.success() && missing.stderr.to_lowercase().contains("error"),
        "delete of a container that does not exist fails with an error line: {missing:?}"
    );
    let id = rt.new_id("refuse");
    rt.create_and_start(&id, &b).expect("create and start");
    let running = rt.delete(&id).expect("delete");
    assert!(
        !running.success() && running.stderr.to_lowercase().contains("error"),
        "delete of a running container fails with an error line: {running:?}"
    );
    assert_eq!(rt.status(&id).expect("state"), "running");
}

/// `kill ID KILL` returns once the init is gone, so a `delete` right after it (as containerd
/// and youki's contest issue it) finds the container stopped instead of refusing a running one.
#[test]
fn delete_right_after_kill_sigkill_succeeds() {
    let rt = runtime();
    for round in 0..3 {
        // Many processes in the pid namespace: the init's death waits for the kernel to
        // kill them all, which is what a delete issued at once used to race.
        let b = bundle().shell("for i in $(seq 200); do sleep 1000 & done; echo ready; wait");
        let id = rt.new_id(&format!("killdel{round}"));
        rt.start_until(&id, &b, "ready").expect("create and start");
        rt.kill(&id, "KILL")
            .expect("kill")
            .ok()
            .expect("kill succeeds");
        let deleted = rt.delete(&id).expect("delete");
        if rt.flavor() == Flavor::Runc {
            // runc 1.1.5 returns from kill at once: its delete races the kernel and may refuse.
            if !deleted.success() {
                rt.delete_force(&id).expect("delete --force");
            }
            continue;
        }
        assert!(
            deleted.success(),
            "round {round}: delete right after kill KILL: {deleted:?}"
        );
    }
}

#[test]
fn delete_force_removes_a_running_container() {
    let b = sleeper();
    let rt = runtime();
    let id = rt.new_id("force");
    let snapshot = HostSnapshot::take(Some(&rt), &[&id], &[b.path()]);
    let pid = rt.create_and_start(&id, &b).expect("create and start");
    let plain = rt.delete(&id).expect("delete");
    assert!(
        !plain.success(),
        "delete without --force refuses a running container: {plain:?}"
    );
    rt.delete_force(&id)
        .expect("delete --force")
        .ok()
        .expect("delete --force succeeds");
    rt.wait_exit(pid, WAIT).expect("the init is gone");
    assert!(!rt.invoke(&["state", &id]).expect("state").success());
    snapshot.assert_clean();
}

#[test]
fn full_cycle_leaves_the_host_clean() {
    let b = sleeper().memory_limit(32 * 1024 * 1024).pids_limit(64);
    let rt = runtime();
    let id = rt.new_id("cycle");
    let snapshot = HostSnapshot::take(Some(&rt), &[&id], &[b.path(), rt.root()]);
    rt.create(&id, &b)
        .expect("create")
        .ok()
        .expect("create succeeds");
    let pid = rt.pid(&id).expect("pid");
    assert!(
        !snapshot.leftovers().is_empty(),
        "the snapshot sees a live container (else it proves nothing)"
    );
    rt.start(&id).expect("start").ok().expect("start succeeds");
    rt.kill(&id, "KILL")
        .expect("kill")
        .ok()
        .expect("kill succeeds");
    rt.wait_exit(pid, WAIT).expect("exit");
    rt.delete(&id)
        .expect("delete")
        .ok()
        .expect("delete succeeds");
    snapshot.assert_clean();
}

#[test]
fn spec_writes_a_config_that_run_accepts() {
    let rt = runtime();
    let b = bundle();
    let options = Invocation {
        cwd: Some(b.path().to_path_buf()),
        ..Invocation::default()
    };
    rt.invoke_with(&["spec"], &options)
        .expect("spec")
        .ok()
        .expect("spec succeeds");
    let text = fs::read_to_string(b.config_path()).expect("spec wrote config.json");
    let mut spec: Value = serde_json::from_str(&text).expect("config.json is JSON");
    assert!(
        spec["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{spec}"
    );
    assert_eq!(spec["root"]["path"], "rootfs");
    assert!(
        spec["process"]["args"].is_array() && spec["linux"]["namespaces"].is_array(),
        "{spec}"
    );
    let again = rt.invoke_with(&["spec"], &options).expect("spec");
    assert!(
        !again.success(),
        "spec refuses to overwrite config.json: {again:?}"
    );
    // The default wants a terminal; run it without one, doing `true`.
    spec["process"]["terminal"] = Value::Bool(false);
    spec["process"]["args"] = serde_json::json!(["true"]);
    let b = b.with_spec(spec);
    let out = rt.run(&rt.new_id("spec"), &b).expect("run");
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[test]
fn features_describe_the_runtime() {
    let rt = runtime();
    let out = rt
        .invoke(&["features"])
        .expect("features")
        .ok()
        .expect("features succeeds");
    let features = out.json().expect("features prints JSON");
    for key in ["ociVersionMin", "ociVersionMax"] {
        assert!(
            features[key].as_str().is_some_and(|v| v.starts_with("1.")),
            "{key} in {features}"
        );
    }
    let namespaces: Vec<&str> = features["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for ns in ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"] {
        assert!(namespaces.contains(&ns), "{ns} in {namespaces:?}");
    }
    assert!(features["linux"]["capabilities"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c == "CAP_SYS_ADMIN")));
}

#[test]
fn a_container_whose_process_ends_is_stopped_and_deletable() {
    let b = bundle().shell("echo done");
    let rt = runtime();
    let id = rt.new_id("ends");
    let created = rt
        .create(&id, &b)
        .expect("create")
        .ok()
        .expect("create succeeds");
    let pid = rt.pid(&id).expect("pid");
    rt.start(&id).expect("start").ok().expect("start succeeds");
    rt.wait_exit(pid, WAIT).expect("the process ends by itself");
    assert_eq!(rt.status(&id).expect("state"), "stopped");
    assert_eq!(
        created.stdout_now(),
        "done\n",
        "the container's stdout is create's stdout"
    );
    let kill = rt.kill(&id, "KILL").expect("kill");
    assert!(
        !kill.success(),
        "a stopped container cannot be signalled: {kill:?}"
    );
    rt.delete(&id)
        .expect("delete")
        .ok()
        .expect("delete of a stopped container succeeds");
}

#[test]
fn update_changes_a_running_containers_memory_limit() {
    let b = sleeper().memory_limit(64 * 1024 * 1024);
    let rt = runtime();
    let id = rt.new_id("update");
    rt.create_and_start(&id, &b).expect("create and start");
    let limit = format!("/sys/fs/cgroup/memory/{id}/memory.limit_in_bytes");
    let read = || {
        fs::read_to_string(&limit)
            .expect("the memory cgroup")
            .trim()
            .to_owned()
    };
    assert_eq!(read(), "67108864");
    let bytes = (128 * 1024 * 1024).to_string();
    let pids = "100".to_string();
    rt.invoke(&["update", "--memory", &bytes, "--pids-limit", &pids, &id])
        .expect("update")
        .ok()
        .expect("update succeeds");
    assert_eq!(read(), bytes);
    let pids_max =
        fs::read_to_string(format!("/sys/fs/cgroup/pids/{id}/pids.max")).expect("pids cgroup");
    assert_eq!(pids_max.trim(), "100");
    assert_eq!(rt.status(&id).expect("state"), "running");
}

#[test]
fn run_with_no_pivot_works() {
    let rt = runtime();
    let id = rt.new_id("nopivot");
    let b = bundle().shell("echo $$; ls /bin/busybox");
    let out = rt
        .run_with(&id, &b, &["--no-pivot"], &Invocation::default())
        .expect("run");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "1\n/bin/busybox\n");
}

#[test]
fn log_in_json_records_a_failure() {
    let b = bundle().root_path("no-such-rootfs");
    let rt = runtime();
    let id = rt.new_id("logjson");
    b.write_config(&id).expect("config");
    rt.track(&id);
    let log = rt.scratch().join("runtime.log");
    let log_arg = log.to_string_lossy().into_owned();
    let bundle_arg = b.path().to_string_lossy().into_owned();
    let out = rt
        .invoke(&[
            "--log",
            &log_arg,
            "--log-format",
            "json",
            "create",
            "--bundle",
            &bundle_arg,
            &id,
        ])
        .expect("create");
    assert!(!out.success(), "{out:?}");
    let text = fs::read_to_string(&log).expect("the runtime wrote its log file");
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a JSON log line ({e}): {l}")))
        .collect();
    assert!(
        entries
            .iter()
            .any(|e| e["level"] == "error" && e["msg"].is_string()),
        "an error entry with a message: {text}"
    );
}

#[test]
fn run_forwards_signals_to_the_container() {
    let b = bundle().shell("trap 'exit 42' TERM; echo ready; sleep 1000 & wait");
    let rt = runtime();
    let id = rt.new_id("fwd");
    let running = rt.spawn_run(&id, &b, &[]).expect("run");
    file_contains(&running.stdout_path, "ready", WAIT).expect("the trap is set");
    let pid = rustix::process::Pid::from_raw(running.pid()).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("signal run");
    let out = running.wait().expect("run ends");
    assert_eq!(
        out.code,
        Some(42),
        "SIGTERM reached the container, whose trap exited 42: {out:?}"
    );
}

#[test]
fn a_created_container_can_be_killed_or_deleted() {
    let b = sleeper();
    let rt = runtime();
    let id = rt.new_id("created");
    let snapshot = HostSnapshot::take(Some(&rt), &[&id], &[b.path()]);
    rt.create(&id, &b)
        .expect("create")
        .ok()
        .expect("create succeeds");
    let pid = rt.pid(&id).expect("pid");
    rt.delete_force(&id)
        .expect("delete --force")
        .ok()
        .expect("delete --force of a created container");
    rt.wait_exit(pid, WAIT).expect("its init is gone");
    snapshot.assert_clean();

    let id = rt.new_id("created");
    rt.create(&id, &b)
        .expect("create")
        .ok()
        .expect("create succeeds");
    let pid = rt.pid(&id).expect("pid");
    rt.kill(&id, "KILL")
        .expect("kill")
        .ok()
        .expect("kill of a created container");
    rt.wait_exit(pid, WAIT).expect("its init exits");
    assert_eq!(rt.status(&id).expect("state"), "stopped");
    rt.delete(&id)
        .expect("delete")
        .ok()
        .expect("delete succeeds");
}

#[test]
fn checkpoint_and_restore_are_refused_with_the_reason() {
    let rt = runtime();
    if !rt.is_berth() {
        eprintln!(
            "skipped: runc checkpoints through CRIU; berth refuses, which is what is checked"
        );
        return;
    }
    let b = Bundle::new()
        .expect("a busybox bundle")
        .args(&["sleep", "1000"]);
    let id = rt.new_id("ckpt");
    let pid = rt.create_and_start(&id, &b).expect("create and start");
    let image = rt.scratch().join("image");
    let image = image.to_string_lossy();
    for args in [
        vec!["checkpoint", "--image-path", &image, "--leave-running", &id],
        vec![
            "restore",
            "-d",
            "--image-path",
            &image,
            "--bundle",
            "/nonexistent",
            &id,
        ],
    ] {
        let out = rt.invoke(&args).expect("invoke");
        assert!(!out.success(), "{args:?} refused: {out:?}");
        assert!(
            out.stderr.contains(&format!(
                "error: {} is not supported: berth-runtime has no checkpoint/restore",
                args[0]
            )),
            "{:?}",
            out.stderr
        );
    }
    assert_eq!(
        rt.status(&id).expect("state"),
        "running",
        "the container was left alone"
    );
    rt.kill(&id, "KILL")
        .expect("kill")
        .ok()
        .expect("kill succeeds");
    rt.wait_exit(pid, WAIT).expect("the init exits");
}
