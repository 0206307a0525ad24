//! `berth login` and `berth logout`, and the credentials pull and push send.
//!
//! The daemon only checks credentials (`POST /auth`); keeping them is the client's job, in the
//! docker CLI's own file (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`) and in its
//! format (`auths.<server>.auth` = base64 of `user:password`), so docker and berth share logins.
//! The file is rewritten whole and atomically (a temporary file renamed over it, mode 0600),
//! keeping every key berth does not know. Credential helpers (`credsStore`, `credHelpers`) mean
//! running another program; berth refuses to write beside them rather than leave a plaintext
//! copy of a secret the user chose to keep in a helper.

use std::io::{BufRead, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use serde_json::{Map, Value};

use crate::cli::{LoginArgs, LogoutArgs};
use crate::connect::Connection;
use crate::error::{CliError, Result};
use crate::output::write_stdout;

/// The server address docker uses for Docker Hub, as the key of its logins.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// The docker CLI's config file.
pub fn config_path() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".docker").join("config.json")),
        None => Err(CliError::Invalid(
            "neither DOCKER_CONFIG nor HOME is set: there is no docker config file to keep logins in".to_string(),
        )),
    }
}

/// The config file as a JSON object; a missing or empty file is an empty one.
fn read_config(path: &Path) -> Result<Map<String, Value>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(CliError::io(format!("read {}", path.display()))(e)),
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(CliError::Invalid(format!(
            "{} is not a JSON object; not touching it",
            path.display()
        ))),
        Err(e) => Err(CliError::Invalid(format!(
            "{} is not valid JSON ({e}); not touching it",
            path.display()
        ))),
    }
}

/// Writes the config whole: a temporary file in the same directory (mode 0600, synced), renamed
/// over the old one, so a reader sees the old file or the new one and never half of either.
fn write_config(path: &Path, config: &Map<String, Value>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(CliError::io(format!("create {}", dir.display())))?;
    let mut text = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut text, formatter);
    serde::Serialize::serialize(config, &mut ser)
        .map_err(|e| CliError::Invalid(format!("encode {}: {e}", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.berth-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config.json".to_string()),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // A file left by an earlier crash keeps its old mode through `open`.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(CliError::io(format!("write {}", path.display())))
}

/// The host\[:port\] a login key or server address names (`https://h:5000/v2/` → `h:5000`).
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// Whether a login key stands for Docker Hub.
fn is_hub(key: &str) -> bool {
    key == DOCKER_HUB_SERVER
        || matches!(
            key_host(key),
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        )
}

/// The credential helper that keeps `server`'s logins, if the config names one.
fn helper_for(config: &Map<String, Value>, server: &str) -> Option<String> {
    let host = key_host(server);
    let per_registry = config
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|helpers| {
            helpers.iter().find_map(|(k, v)| {
                let same = k == server || key_host(k) == host || (is_hub(k) && is_hub(server));
                same.then(|| v.as_str().map(str::to_string)).flatten()
            })
        });
    per_registry.or_else(|| {
        config
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    })
}

fn refuse_helper(path: &Path, server: &str, helper: &str) -> CliError {
    CliError::Message(
        1,
        format!(
            "Error: {} keeps the credentials for {server} in the credential helper \
             docker-credential-{helper} (credsStore/credHelpers); berth does not run credential \
             helpers and will not write a plaintext password beside them: use docker login, or \
             remove the helper from the file",
            path.display()
        ),
    )
}

/// A stored `user:password` (the `auth` field, or `username`/`password`) for one key's entry.
fn decode_entry(path: &Path, key: &str, entry: &Value) -> Result<Option<(String, String)>> {
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let auth = field("auth");
    if !auth.is_empty() {
        let bad = |why: &str| {
            CliError::Invalid(format!(
                "{}: the login for {key} is unreadable: {why}",
                path.display()
            ))
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("its auth field is not base64"))?;
        let text = String::from_utf8(raw).map_err(|_| bad("its auth field is not UTF-8"))?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| bad("its auth field is not user:password"))?;
        return Ok(Some((user.to_string(), password.to_string())));
    }
    let (user, password) = (field("username"), field("password"));
    if user.is_empty() && password.is_empty() {
        return Ok(None);
    }
    Ok(Some((user, password)))
}

/// The stored login for `server` (matched by host, and Docker Hub's several names as one).
fn stored_login(
    path: &Path,
    config: &Map<String, Value>,
    server: &str,
) -> Result<Option<(String, String)>> {
    let Some(auths) = config.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    let exact = auths.get(server).map(|e| (server, e));
    let found = exact.or_else(|| {
        auths.iter().find_map(|(k, v)| {
            let same = if is_hub(server) {
                is_hub(k)
            } else {
                key_host(k) == key_host(server)
            };
            same.then_some((k.as_str(), v))
        })
    });
    match found {
        Some((key, entry)) => decode_entry(path, key, entry),
        None => Ok(None),
    }
}

/// The registry an image name lives in, as docker reads it: the first path component when it
/// looks like a host (a dot, a port, or `localhost`), else Docker Hub.
fn image_registry(image: &str) -> String {
    let name = image.split('@').next().unwrap_or(image);
    match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            if matches!(first, "docker.io" | "index.docker.io") {
                DOCKER_HUB_SERVER.to_string()
            } else {
                first.to_string()
            }
        }
        _ => DOCKER_HUB_SERVER.to_string(),
    }
}

/// The stored login for the registry `image` lives in, as pull and push send it
/// (`X-Registry-Auth`); none means an anonymous request. A registry whose login a credential
/// helper keeps is pulled anonymously, with a warning that says why.
/// An unreadable config file is warned about and the request made anonymously, as docker does.
pub fn credentials_for_image(image: &str) -> Result<Option<DockerCredentials>> {
    let Ok(path) = config_path() else {
        return Ok(None);
    };
    let server = image_registry(image);
    let found = read_config(&path).and_then(|c| Ok((stored_login(&path, &c, &server)?, c)));
    let (login, config) = match found {
        Ok(found) => found,
        Err(e) => {
            eprintln!("WARNING: Error loading config file: {e}");
            return Ok(None);
        }
    };
    if let Some((username, password)) = login {
        return Ok(Some(DockerCredentials {
            username: Some(username),
            password: Some(password),
            serveraddress: Some(server),
            ..Default::default()
        }));
    }
    if let Some(helper) = helper_for(&config, &server) {
        eprintln!(
            "WARNING! {} keeps logins in the credential helper docker-credential-{helper}, which \
             berth does not run: {server} is reached without credentials",
            path.display()
        );
    }
    Ok(None)
}

/// Reads one line from stdin, without its line ending.
fn read_line() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(CliError::io("read from stdin"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Prompts on stdout and reads the answer; with `secret`, the terminal does not echo it.
fn prompt(text: &str, secret: bool) -> Result<String> {
    let show = || {
        print!("{text}");
        std::io::stdout()
            .flush()
            .map_err(CliError::io("write the prompt"))
    };
    if !secret {
        show()?;
        return read_line();
    }
    let stdin = std::io::stdin();
    let saved = rustix::termios::tcgetattr(&stdin).map_err(|e| CliError::Io {
        what: "read the terminal's settings (tcgetattr on stdin)".to_string(),
        source: e.into(),
    })?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
    // Echo goes off before the prompt shows, so nothing typed after the prompt is echoed.
    rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet).map_err(
        |e| CliError::Io {
            what: "turn off the terminal's echo (tcsetattr on stdin)".to_string(),
            source: e.into(),
        },
    )?;
    let answer = show().and_then(|()| read_line());
    // Restored whatever the read did: a terminal left silent is worse than a failed login.
    let restored =
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &saved);
    println!();
    restored.map_err(|e| CliError::Io {
        what: "restore the terminal's echo (tcsetattr on stdin)".to_string(),
        source: e.into(),
    })?;
    answer
}

/// `POST /auth` on the daemon: `Ok(())` when the registry took the credentials.
async fn daemon_login(conn: &Connection, server: &str, user: &str, password: &str) -> Result<()> {
    let body = serde_json::json!({
        "username": user,
        "password": password,
        "serveraddress": server,
    });
    let (status, answer) = conn
        .post_json_raw("/auth", body.to_string().as_bytes())
        .await?;
    if status == 200 {
        return Ok(());
    }
    let message = serde_json::from_slice::<Value>(&answer)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&answer).trim().to_string());
    Err(CliError::Daemon { status, message })
}

/// `berth login [SERVER]`.
pub async fn login(conn: &Connection, args: &LoginArgs) -> Result<()> {
    let server = match args.server.as_deref() {
        None | Some("") | Some("docker.io") => DOCKER_HUB_SERVER.to_string(),
        Some(s) => s.to_string(),
    };
    if args.password.is_some() && args.password_stdin {
        return Err(CliError::Message(
            1,
            "Error: --password and --password-stdin are mutually exclusive".to_string(),
        ));
    }
    if args.password_stdin && args.username.is_none() {
        return Err(CliError::Message(
            1,
            "Error: Must provide --username with --password-stdin".to_string(),
        ));
    }
    if args.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let path = config_path()?;
    let config = read_config(&path)?;
    if let Some(helper) = helper_for(&config, &server) {
        return Err(refuse_helper(&path, &server, &helper));
    }
    let mut password = args.password.clone();
    if args.password_stdin {
        let mut all = String::new();
        std::io::stdin()
            .read_to_string(&mut all)
            .map_err(CliError::io("read the password from stdin"))?;
        let trimmed = all.strip_suffix('\n').unwrap_or(&all);
        password = Some(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string());
    }
    let mut username = args.username.clone();
    // With nothing given, a stored login is tried first, as docker does.
    if username.is_none() && password.is_none() {
        if let Some((user, pw)) = stored_login(&path, &config, &server)? {
            match daemon_login(conn, &server, &user, &pw).await {
                Ok(()) => return write_stdout("Login Succeeded\n"),
                Err(e) => {
                    eprintln!("Login did not succeed, error: {e}");
                    username = Some(user);
                }
            }
        }
    }
    let interactive = super::stream::stdin_is_terminal();
    let username = match username.filter(|u| !u.trim().is_empty()) {
        Some(u) if args.username.is_some() => u.trim().to_string(),
        default => {
            if !interactive {
                return Err(CliError::Message(
                    1,
                    "Error: Cannot perform an interactive login from a non TTY device".to_string(),
                ));
            }
            let shown = match &default {
                Some(d) => format!("Username ({d}): "),
                None => "Username: ".to_string(),
            };
            let typed = prompt(&shown, false)?;
            let typed = typed.trim();
            match (typed.is_empty(), default) {
                (false, _) => typed.to_string(),
                (true, Some(d)) => d,
                (true, None) => {
                    return Err(CliError::Message(
                        1,
                        "Error: Username is required".to_string(),
                    ))
                }
            }
        }
    };
    let password = match password {
        Some(p) => p,
        None => {
            if !interactive {
                return Err(CliError::Message(
                    1,
                    "Error: Cannot perform an interactive login from a non TTY device".to_string(),
                ));
            }
            prompt("Password: ", true)?
        }
    };
    if password.is_empty() {
        return Err(CliError::Message(
            1,
            "Error: Password is required".to_string(),
        ));
    }
    daemon_login(conn, &server, &username, &password).await?;
    store_login(&path, &server, &username, &password)?;
    eprintln!(
        "WARNING! Your credentials are stored unencrypted in '{}'.",
        path.display()
    );
    write_stdout("Login Succeeded\n")
}

/// Adds (or replaces) `server`'s entry in the config, keeping everything else in the file.
fn store_login(path: &Path, server: &str, username: &str, password: &str) -> Result<()> {
    // Read again: the file may have changed while the daemon asked the registry.
    let mut config = read_config(path)?;
    if let Some(helper) = helper_for(&config, server) {
        return Err(refuse_helper(path, server, &helper));
    }
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    if let Value::Object(auths) = auths {
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let mut entry = Map::new();
        entry.insert("auth".to_string(), Value::String(auth));
        auths.insert(server.to_string(), Value::Object(entry));
    }
    write_config(path, &config)
}

/// `berth logout [SERVER]`: needs no daemon, only the config file.
pub fn logout(args: &LogoutArgs) -> Result<()> {
    let server = match args.server.as_deref() {
        None | Some("") | Some("docker.io") => DOCKER_HUB_SERVER.to_string(),
        Some(s) => s.to_string(),
    };
    let hub = server == DOCKER_HUB_SERVER;
    let shown = if hub {
        server.clone()
    } else {
        key_host(&server).to_string()
    };
    // Every spelling docker itself may have stored the login under.
    let mut keys = vec![server.clone()];
    if !hub {
        keys.extend([
            shown.clone(),
            format!("http://{shown}"),
            format!("https://{shown}"),
        ]);
    }
    let path = config_path()?;
    let mut config = read_config(&path)?;
    let present: Vec<String> = config
        .get("auths")
        .and_then(Value::as_object)
        .map(|a| {
            keys.iter()
                .filter(|k| a.contains_key(k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if let Some(helper) = helper_for(&config, &server) {
        return Err(refuse_helper(&path, &server, &helper));
    }
    if present.is_empty() {
        return write_stdout(&format!("Not logged in to {shown}\n"));
    }
    write_stdout(&format!("Removing login credentials for {shown}\n"))?;
    if let Some(Value::Object(auths)) = config.get_mut("auths") {
        for k in &present {
            auths.remove(k);
        }
    }
    write_config(&path, &config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_name_their_registry_as_docker_reads_them() {
        assert_eq!(image_registry("busybox"), DOCKER_HUB_SERVER);
        assert_eq!(image_registry("user/app:1"), DOCKER_HUB_SERVER);
        assert_eq!(
            image_registry("docker.io/library/busybox"),
            DOCKER_HUB_SERVER
        );
        assert_eq!(image_registry("127.0.0.1:5000/bb:1"), "127.0.0.1:5000");
        assert_eq!(image_registry("localhost/bb"), "localhost");
        assert_eq!(
            image_registry("reg.example.com/a/b@sha256:00"),
            "reg.example.com"
        );
    }

    #[test]
    fn logins_are_stored_beside_the_other_keys_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"other:1":{"auth":"eDp5"}},"psFormat":"table {{.ID}}"}"#,
        )
        .expect("write config");
        store_login(&path, "127.0.0.1:5000", "alice", "s3:cret").expect("store");
        let config = read_config(&path).expect("read");
        assert_eq!(config["psFormat"], "table {{.ID}}");
        assert_eq!(config["auths"]["other:1"]["auth"], "eDp5");
        assert_eq!(
            config["auths"]["127.0.0.1:5000"],
            serde_json::json!({"auth": "YWxpY2U6czM6Y3JldA=="})
        );
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            stored_login(&path, &config, "http://127.0.0.1:5000/v2/").expect("read"),
            Some(("alice".to_string(), "s3:cret".to_string()))
        );
        assert_eq!(
            stored_login(&path, &config, "nowhere:1").expect("read"),
            None
        );
    }

    #[test]
    fn credential_helpers_are_named_and_respected() {
        let mut config = Map::new();
        config.insert("credHelpers".into(), serde_json::json!({"quay.io": "pass"}));
        assert_eq!(helper_for(&config, "quay.io"), Some("pass".to_string()));
        assert_eq!(helper_for(&config, "127.0.0.1:5000"), None);
        config.insert("credsStore".into(), serde_json::json!("desktop"));
        assert_eq!(
            helper_for(&config, "127.0.0.1:5000"),
            Some("desktop".to_string())
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credsStore":"desktop"}"#).expect("write config");
        let err = store_login(&path, "127.0.0.1:5000", "a", "b").expect_err("refused");
        assert!(
            err.to_string().contains("docker-credential-desktop"),
            "{err}"
        );
    }
}
