//! The engine's SSH client against a real OpenSSH server (Debian `openssh-server`), started here on
//! 127.0.0.1 with a throw-away host key and a throw-away client key authorised for the current user:
//! key login, commands with their output and exit status, file write and read, the host key recorded
//! for the session (the same fingerprint `ssh-keygen -l` prints), and a refused login named as such.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mtv_config::Secret;
use mtv_engine::guest::{GuestShell, HostKeys, Login, SshError};

const SSHD: &str = "/usr/sbin/sshd";

struct Sshd {
    child: Child,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs (Debian openssh-client; scripts/install-test-deps.sh)");
    assert!(status.success());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn whoami() -> String {
    let output = Command::new("id").arg("-un").output().expect("id runs");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Starts sshd in the foreground on a free port, with everything it reads in `dir`.
fn start_sshd(dir: &Path) -> Sshd {
    keygen(&dir.join("host_key"));
    keygen(&dir.join("client_key"));
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    // sshd wants its privilege-separation directory even when it never uses it for us.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = free_port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile none\n\
         AuthorizedKeysFile {dir}/authorized_keys\nStrictModes no\nUsePAM no\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
         AllowUsers {user}\n",
        dir = dir.display(),
        user = whoami()
    );
    std::fs::write(dir.join("sshd_config"), config).unwrap();
    let child = Command::new(SSHD)
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sshd starts");
    let sshd = Sshd { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not listen within 20s");
        std::thread::sleep(Duration::from_millis(50));
    }
    sshd
}

fn sshd_available() -> bool {
    if mtv_test_peers::skipped("openssh") {
        return false;
    }
    assert!(
        Path::new(SSHD).is_file(),
        "{SSHD} is missing: run scripts/install-test-deps.sh (Debian openssh-server), or set \
         MTV_SKIP_OPENSSH_TESTS=1"
    );
    true
}

async fn connect(port: u16) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to sshd")
}

fn fingerprint(public_key: &Path) -> String {
    let output = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(public_key)
        .output()
        .expect("ssh-keygen -l runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_ssh_client_logs_into_openssh_with_a_key() {
    if !sshd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sshd = start_sshd(dir.path());
    let login = Login {
        user: whoami(),
        password: None,
        key: Some(dir.path().join("client_key")),
    };
    let keys = HostKeys::default();
    let shell = GuestShell::login(connect(sshd.port).await, "openssh", &login, &keys)
        .await
        .expect("key login");
    let echoed = shell
        .run("echo hello; echo oops >&2; exit 3")
        .await
        .unwrap();
    assert_eq!(echoed.stdout, "hello\n");
    assert_eq!(echoed.stderr, "oops\n");
    assert_eq!(echoed.exit_status, Some(3));
    let file = dir.path().join("a file with spaces");
    let path = file.to_str().unwrap();
    shell.write_file(path, "marker\nline 2\n").await.unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "marker\nline 2\n");
    assert_eq!(
        shell.read_file(path).await.unwrap().as_deref(),
        Some("marker\nline 2\n")
    );
    assert_eq!(shell.read_file("/no/such/file").await.unwrap(), None);
    shell.close().await;
    // The host key is recorded, as OpenSSH itself prints its fingerprint.
    let recorded = keys.recorded();
    assert_eq!(
        recorded.get("openssh").map(String::as_str),
        Some(fingerprint(&dir.path().join("host_key.pub")).as_str())
    );
    // A second login in the same session sees the same key and is let in.
    let again = GuestShell::login(connect(sshd.port).await, "openssh", &login, &keys)
        .await
        .expect("second login");
    again.close().await;
}

#[tokio::test]
async fn a_refused_login_and_a_changed_host_key_are_named() {
    if !sshd_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sshd = start_sshd(dir.path());
    let refused = Login {
        user: whoami(),
        password: Some(Secret::new("not-the-password")),
        key: None,
    };
    let error = GuestShell::login(
        connect(sshd.port).await,
        "openssh",
        &refused,
        &HostKeys::default(),
    )
    .await
    .err()
    .expect("refused");
    assert!(
        matches!(
            error,
            SshError::Denied {
                method: "password",
                ..
            }
        ),
        "{error}"
    );
    assert!(!error.to_string().contains("not-the-password"), "{error}");
    // A session that saw another key for this guest refuses to log in.
    let keys = HostKeys::default();
    keys.admit("openssh", "SHA256:someoneelse").unwrap();
    let login = Login {
        user: whoami(),
        password: None,
        key: Some(dir.path().join("client_key")),
    };
    let error = GuestShell::login(connect(sshd.port).await, "openssh", &login, &keys)
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, SshError::HostKeyChanged { .. }), "{error}");
}
