//! Bad input: a missing or malformed config.json, a missing rootfs, an unknown namespace type,
//! an unknown capability, a mount destination that climbs out of the rootfs. Each create fails
//! with a non-zero exit and leaves no state directory, cgroup, mount or process; berth-runtime's
//! one-line error also names the field (runc's messages differ, so only berth is held to that).

use std::path::Path;

use berth_tests::{unique_name, Bundle, Flavor, HostSnapshot, Runtime};
use serde_json::json;

fn runtime() -> Runtime {
    Runtime::new().expect("the runtime under test (see the berth-tests crate doc)")
}

fn bundle() -> Bundle {
    Bundle::new().expect("a busybox bundle")
}

/// Creates `bundle`, requires failure, a clean host, and for berth a stderr naming one of
/// `fields`.
fn refused(tag: &str, bundle: Bundle, fields: &[&str]) {
    let rt = runtime();
    // The control: this runtime creates a valid bundle, so the refusal below is the input's.
    let good = self::bundle().args(&["sleep", "1000"]);
    let control = rt.new_id("valid");
    rt.create(&control, &good)
        .expect("create")
        .ok()
        .expect("a valid bundle is created");
    rt.destroy(&control);
    let id = rt.new_id(tag);
    let snapshot = HostSnapshot::take(Some(&rt), &[&id], &[bundle.path()]);
    let out = rt.create(&id, &bundle).expect("create");
    assert!(!out.success(), "{tag}: create must fail: {out:?}");
    assert!(
        !out.stderr.trim().is_empty(),
        "{tag}: an error message on stderr: {out:?}"
    );
    if rt.is_berth() {
        assert!(
            fields.iter().any(|f| out.stderr.contains(f)),
            "{tag}: berth's error names the field ({fields:?}): {}",
            out.stderr
        );
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{tag}: one line: {}",
            out.stderr
        );
    }
    let listed = rt.list_json().expect("list");
    assert!(
        listed.as_array().is_none_or(|a| a.is_empty()),
        "{tag}: nothing listed: {listed}"
    );
    snapshot.assert_clean();
}

#[test]
fn missing_config_is_refused() {
    refused("noconfig", bundle().without_config(), &["config.json"]);
}

#[test]
fn malformed_config_is_refused() {
    refused(
        "badjson",
        bundle().raw_config("{ \"ociVersion\": \"1.0.2\", \"process\": "),
        &["config.json"],
    );
}

#[test]
fn config_without_process_is_refused() {
    let mut b = bundle();
    b.spec_mut()
        .as_object_mut()
        .expect("an object")
        .remove("process");
    refused("noprocess", b, &["process"]);
}

#[test]
fn missing_rootfs_is_refused() {
    refused(
        "norootfs",
        bundle().root_path("no-such-rootfs"),
        &["root.path", "no-such-rootfs"],
    );
}

#[test]
fn unknown_namespace_type_is_refused() {
    refused(
        "nsfoo",
        bundle().namespace("foo", None),
        &["linux.namespaces", "foo"],
    );
}

/// For input runc 1.1.5 accepts with a warning by design: runc must warn naming `warned`,
/// create nothing at `outside`, and leave the host clean once the container is deleted.
fn runc_accepts_with_warning(tag: &str, bundle: Bundle, warned: &str, outside: Option<&Path>) {
    let rt = runtime();
    let id = rt.new_id(tag);
    let snapshot = HostSnapshot::take(Some(&rt), &[&id], &[bundle.path()]);
    let out = rt.create(&id, &bundle).expect("create");
    assert!(
        out.stderr.contains(warned),
        "{tag}: runc warns about {warned}: {out:?}"
    );
    if let Some(outside) = outside {
        assert!(
            !outside.exists(),
            "{tag}: nothing was made outside the rootfs at {}",
            outside.display()
        );
    }
    rt.destroy(&id);
    snapshot.assert_clean();
}

#[test]
fn unknown_capability_is_refused() {
    let b = bundle().add_capability("CAP_FOO");
    if Runtime::flavor_under_test().expect("the runtime under test") == Flavor::Runc {
        // runc ignores unknown capabilities with a warning, on purpose, so that a config written
        // for a newer kernel still runs; the spec lets a runtime refuse them, and berth does.
        runc_accepts_with_warning("capfoo", b, "CAP_FOO", None);
        return;
    }
    refused("capfoo", b, &["process.capabilities", "CAP_FOO"]);
}

#[test]
fn mount_destination_escaping_the_rootfs_is_refused() {
    let escape = unique_name("escape");
    let b = bundle();
    // "../../<name>" from <bundle>/rootfs names <tmp>/<name> on the host.
    let outside = b
        .path()
        .parent()
        .expect("the bundle's parent")
        .join(&escape);
    let b = b.mount(json!({
        "destination": format!("../../{escape}"), "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]
    }));
    if Runtime::flavor_under_test().expect("the runtime under test") == Flavor::Runc {
        // runc 1.1.5 accepts a relative destination with a deprecation warning and resolves it
        // inside the rootfs (securejoin); what matters is that nothing escapes.
        runc_accepts_with_warning("mountesc", b, "not absolute", Some(&outside));
        return;
    }
    refused("mountesc", b, &["mounts", "destination"]);
    assert!(
        !outside.exists(),
        "nothing was made outside the rootfs at {}",
        outside.display()
    );
}

#[test]
fn bad_id_mapping_is_refused() {
    // A user namespace whose mappings are empty cannot map the process's uid 0.
    let mut b = bundle().namespace("user", None);
    b.spec_mut()["linux"]["uidMappings"] = json!([]);
    b.spec_mut()["linux"]["gidMappings"] = json!([]);
    refused("badmap", b, &["uidMappings", "gidMappings"]);
}
