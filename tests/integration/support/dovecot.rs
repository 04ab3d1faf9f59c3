//! A private, throwaway Dovecot (2.3) for integration tests and the demo.
//!
//! Every instance has its own temp dir (config, base_dir, state_dir, log,
//! Maildirs, certificates) and its own loopback ports, so tests can run
//! several at once. Nothing under /etc/dovecot or /run/dovecot is used.
#![allow(dead_code)] // shared by several test binaries and examples; each uses a subset

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_rustls::rustls::{self, pki_types::ServerName};

use super::certs::{self, TestPki};

/// Test accounts (user, password), created in every instance. carol's
/// password has spaces, quotes, a backslash and non-ASCII letters.
pub const USERS: [(&str, &str); 3] = [
    ("alice", "wonderland"),
    ("bob", "builder"),
    ("carol", "pass word \"quoted\" \\ wörd"),
];

const START_ATTEMPTS: usize = 4;
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// What an instance offers beyond the plain set-up.
#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    /// SCRAM-SHA-1, SCRAM-SHA-256, EXTERNAL and ANONYMOUS besides PLAIN
    /// and LOGIN; a client certificate is asked for on every TLS
    /// connection (`ssl_verify_client_cert`), and a valid one names the
    /// user (`auth_ssl_username_from_cert`, the certificate's CN).
    /// ANONYMOUS logs in as bob.
    pub sasl: bool,
    /// A third listener that requires a HAProxy PROXY header
    /// (`haproxy = yes`, `haproxy_trusted_networks` = loopback).
    pub haproxy: bool,
    /// No password before TLS (`disable_plaintext_auth = yes`: LOGINDISABLED
    /// and no AUTH= in plaintext). Dovecot counts a connection whose
    /// remote address is its local one as secure, so the listeners also
    /// take 127.0.0.2: connected to from 127.0.0.1 (Linux picks that
    /// source), it is a connection from another address.
    pub no_plaintext_auth: bool,
    /// `ssl_min_protocol = TLSv1.3`.
    pub tls13_only: bool,
    /// The server certificate.
    pub cert: Cert,
}

/// What certificate the server presents (always for `localhost` and
/// 127.0.0.1; [`Dovecot::ca_file`] holds the root to trust).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cert {
    /// A leaf signed by the CA directly.
    #[default]
    Plain,
    /// A leaf valid from a day ago until this many days from now.
    ExpiresIn(u64),
    /// Leaf and intermediate sent, the root trusted.
    FullChain,
    /// A leaf issued by an intermediate the server does not send.
    NoIntermediate,
}

pub struct Dovecot {
    // Field order matters for Drop: the processes are stopped in drop(),
    // the temp dir is removed afterwards when `dir` is dropped.
    child: Child,
    /// Closing this pipe makes the wrapper shell stop Dovecot, even if this
    /// process dies without running Drop (SIGKILL, abort, Ctrl-C).
    lifeline: Option<ChildStdin>,
    plain_port: u16,
    tls_port: u16,
    ca_file: PathBuf,
    log_path: PathBuf,
    stderr_path: PathBuf,
    home_root: PathBuf,
    /// uid/gid the mail processes run as, when we are root.
    mail_owner: Option<(u32, u32)>,
    compress: bool,
    pki: TestPki,
    /// `Features::sasl`: the client certificate of alice, and its CA.
    client: Option<TestPki>,
    haproxy_port: Option<u16>,
    /// The CA the readiness check trusts.
    ready_ca: Vec<u8>,
    dir: tempfile::TempDir,
}

impl Dovecot {
    /// Starts a private Dovecot on 127.0.0.1 with a plain/STARTTLS port and
    /// an implicit-TLS port; returns once both answer with a greeting.
    /// Panics (with Dovecot's log) if it cannot be started.
    pub fn start() -> Dovecot {
        Dovecot::start_with(Features::default())
    }

    /// [`start`](Self::start) with more of Dovecot switched on.
    pub fn start_with(features: Features) -> Dovecot {
        let mut errors = String::new();
        for attempt in 1..=START_ATTEMPTS {
            match try_start(features) {
                Ok(dovecot) => return dovecot,
                // Another process grabbed one of our ports between probing
                // and Dovecot's bind(): pick new ports and retry.
                Err(StartError {
                    report,
                    retry: true,
                }) => {
                    let _ = writeln!(errors, "--- attempt {attempt} (port race) ---\n{report}");
                }
                Err(StartError { report, .. }) => {
                    panic!("{errors}could not start Dovecot:\n{report}")
                }
            }
        }
        panic!("could not start Dovecot after {START_ATTEMPTS} attempts:\n{errors}");
    }

    /// Plaintext port (143-style); STARTTLS is offered, LOGIN works without TLS.
    pub fn plain_port(&self) -> u16 {
        self.plain_port
    }

    /// Implicit-TLS port (993-style).
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// `Features::haproxy`: the plaintext port that wants a PROXY header.
    pub fn haproxy_port(&self) -> u16 {
        self.haproxy_port
            .expect("started without Features::haproxy")
    }

    /// `Features::sasl`: alice's client certificate (CN=alice) and the CA
    /// Dovecot trusts for client certificates.
    pub fn client_pki(&self) -> &TestPki {
        self.client
            .as_ref()
            .expect("started without Features::sasl")
    }

    /// PEM of the test CA that signed the server certificate. The server
    /// certificate is valid for "localhost" and 127.0.0.1.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The CA and server certificate/key in all encodings.
    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    /// ("alice", password).
    pub fn user(&self) -> (&str, &str) {
        USERS[0]
    }

    /// ("bob", password).
    pub fn second_user(&self) -> (&str, &str) {
        USERS[1]
    }

    /// ("carol", a password with spaces, quotes, a backslash, non-ASCII).
    pub fn tricky_user(&self) -> (&str, &str) {
        USERS[2]
    }

    /// Whether COMPRESS=DEFLATE is offered after login (imap_zlib plugin found).
    pub fn has_compress(&self) -> bool {
        self.compress
    }

    /// The instance's temp dir (config, logs, Maildirs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Root of `user`'s Maildir (INBOX); folders are `.Name` below it.
    pub fn maildir(&self, user: &str) -> PathBuf {
        assert!(
            USERS.iter().any(|(u, _)| *u == user),
            "unknown test user {user:?}"
        );
        self.home_root.join(user).join("Maildir")
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Dovecot's log so far (plus anything it printed on stderr).
    pub fn log(&self) -> String {
        read_logs(&self.log_path, &self.stderr_path)
    }

    /// Writes `message` byte for byte into `user`'s `mailbox` ("INBOX" or a
    /// folder name using "." as hierarchy separator), creating the folder if
    /// needed. Safe while Dovecot runs: written to tmp/, renamed into new/.
    /// Note that Dovecot serves messages with bare LF turned into CRLF, and
    /// NUL replaced by 0x80 except in BINARY[] fetches.
    pub fn deliver(&self, user: &str, mailbox: &str, message: &[u8]) -> PathBuf {
        let root = self.maildir(user);
        let dir = if mailbox.eq_ignore_ascii_case("INBOX") {
            root
        } else {
            assert!(
                !mailbox.is_empty()
                    && !mailbox.starts_with('.')
                    && !mailbox.contains('/')
                    && mailbox.is_ascii(),
                "unsupported mailbox name {mailbox:?} (ASCII, no '/', '.' separates levels)"
            );
            root.join(format!(".{mailbox}"))
        };
        make_maildir(&dir, self.mail_owner);

        let name = unique_maildir_name();
        let tmp = dir.join("tmp").join(&name);
        let new = dir.join("new").join(&name);
        fs::write(&tmp, message).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
        self.chown(&tmp);
        fs::rename(&tmp, &new).unwrap_or_else(|e| panic!("rename into {}: {e}", new.display()));
        new
    }

    /// Fills `user`'s folder `mailbox` (created, must not exist yet) with
    /// `count` messages made by `message(i)` for i in 1..=count, written
    /// straight into cur/ with the Maildir flags `flags(i)` (`"S"`, `"FS"`,
    /// `""`): tens of thousands a second, for scripts/bench. Only before
    /// anyone opens the folder: Dovecot indexes it on the first SELECT.
    pub fn fill(
        &self,
        user: &str,
        mailbox: &str,
        count: usize,
        message: impl Fn(usize) -> Vec<u8>,
        flags: impl Fn(usize) -> &'static str,
    ) {
        let dir = self.maildir(user).join(format!(".{mailbox}"));
        assert!(!dir.exists(), "{} exists already", dir.display());
        make_maildir(&dir, self.mail_owner);
        let cur = dir.join("cur");
        // One time stamp, names in order: UIDs follow i.
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        for i in 1..=count {
            let path = cur.join(format!("{secs}.M{i:07}P0.fill:2,{}", flags(i)));
            fs::write(&path, message(i))
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            self.chown(&path);
        }
    }

    /// Creates the folders `names` (`.` separates levels) in `user`'s
    /// Maildir, empty; quickly, so before anyone lists them.
    pub fn create_folders(&self, user: &str, names: impl IntoIterator<Item = String>) {
        let root = self.maildir(user);
        for name in names {
            let dir = root.join(format!(".{name}"));
            fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir(dir.join(sub)).expect("create maildir subdir");
                self.chown(&dir.join(sub));
            }
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod maildir");
            self.chown(&dir);
        }
    }

    fn chown(&self, path: &Path) {
        chown(path, self.mail_owner);
    }
}

fn chown(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

/// Creates `dir` with cur/new/tmp unless it exists. The folder is built in
/// the parent Maildir's tmp/ (where Dovecot never looks for folders) and
/// renamed into place, so a running Dovecot never sees a half-made Maildir.
fn make_maildir(dir: &Path, owner: Option<(u32, u32)>) {
    if dir.is_dir() {
        return;
    }
    let parent = dir.parent().expect("maildir parent");
    let parent_tmp = parent.join("tmp");
    let staging_in = if parent_tmp.is_dir() {
        parent_tmp
    } else {
        parent.to_path_buf()
    };
    let staging = tempfile::Builder::new()
        .prefix("staging-")
        .tempdir_in(&staging_in)
        .unwrap_or_else(|e| panic!("staging dir in {}: {e}", staging_in.display()))
        .keep();
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir(staging.join(sub)).expect("create maildir subdir");
        chown(&staging.join(sub), owner);
    }
    fs::set_permissions(&staging, fs::Permissions::from_mode(0o700)).expect("chmod maildir");
    chown(&staging, owner);
    if let Err(e) = fs::rename(&staging, dir) {
        let _ = fs::remove_dir_all(&staging);
        // Lost a race against another deliver() (or Dovecot): fine.
        assert!(dir.is_dir(), "create {}: {e}", dir.display());
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // EOF on the lifeline: the wrapper sends SIGTERM to the group and
        // reaps the master, usually within ~20 ms.
        drop(self.lifeline.take());
        // The master sometimes sits in a fixed 1 s sleep waiting for its log
        // process; don't wait for that, SIGKILL whatever is left instead.
        let deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        kill_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct StartError {
    report: String,
    retry: bool,
}

/// Facts about the local Dovecot installation, looked up once.
struct Install {
    binary: PathBuf,
    imap_zlib: bool,
}

fn install() -> &'static Install {
    static INSTALL: OnceLock<Install> = OnceLock::new();
    INSTALL.get_or_init(|| {
        let binary = find_dovecot().unwrap_or_else(|| {
            panic!(
                "dovecot not found (install the Debian package dovecot-imapd; \
                 scripts/test does this, or set IMAPTALK_DOVECOT=/path/to/dovecot)"
            )
        });
        let module_dir = Command::new(&binary)
            .arg("--build-options")
            .output()
            .ok()
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.lines()
                    .find_map(|l| l.strip_prefix("Module dir:").map(|d| d.trim().to_owned()))
            })
            .map(PathBuf::from)
            .into_iter()
            .chain(
                [
                    "/usr/lib/dovecot/modules",
                    "/usr/lib64/dovecot",
                    "/usr/local/lib/dovecot",
                ]
                .map(PathBuf::from),
            );
        let imap_zlib = module_dir
            .into_iter()
            .any(|d| d.join("lib30_imap_zlib_plugin.so").exists());
        Install { binary, imap_zlib }
    })
}

fn find_dovecot() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("IMAPTALK_DOVECOT") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("dovecot"))
        .find(|p| p.is_file())
}

/// Who the Dovecot processes run as.
enum Identity {
    /// Root: Dovecot's own users for login/internal processes, mail
    /// processes as `nobody` (Dovecot refuses uid 0 for mail access).
    Root { mail_uid: u32, mail_gid: u32 },
    /// Anyone else: everything runs as the current user.
    User {
        name: String,
        group: String,
        uid: u32,
        gid: u32,
    },
}

fn identity() -> Identity {
    // Owner of a file we just created = our effective uid/gid, without libc.
    let meta = tempfile::tempfile()
        .and_then(|f| f.metadata())
        .expect("create probe temp file");
    if meta.uid() == 0 {
        let (mail_uid, mail_gid) = nobody_ids().unwrap_or((65534, 65534));
        Identity::Root { mail_uid, mail_gid }
    } else {
        let id = |flag: &str| {
            let out = Command::new("id").arg(flag).output().expect("run id");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        Identity::User {
            name: id("-un"),
            group: id("-gn"),
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }
}

fn nobody_ids() -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.starts_with("nobody:"))?;
    let mut fields = line.split(':').skip(2);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

fn temp_base(root: bool) -> PathBuf {
    let tmp = std::env::temp_dir();
    // Unix socket paths in base_dir must stay under ~108 bytes, and as root
    // the unprivileged Dovecot processes must be able to traverse the path.
    let traversable = || {
        tmp.ancestors()
            .all(|a| fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
    };
    if tmp.as_os_str().len() > 40 || (root && !traversable()) {
        PathBuf::from("/tmp")
    } else {
        tmp
    }
}

fn try_start(features: Features) -> Result<Dovecot, StartError> {
    let install = install();
    let who = identity();
    let dir = tempfile::Builder::new()
        .prefix("imaptalk-dovecot-")
        .tempdir_in(temp_base(matches!(who, Identity::Root { .. })))
        .expect("create temp dir");
    let base = dir.path().to_path_buf();
    // As root, Dovecot's auth (user dovecot) and mail (nobody) processes need
    // to reach files in here; the passwords are throwaway test passwords.
    fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");

    let names = ["localhost", "127.0.0.1"];
    // The last: what the readiness check trusts (the root, or the
    // intermediate the server does not send).
    let (pki, sent_pem, ready_ca) = match features.cert {
        Cert::Plain => {
            let pki = certs::pki_for(&names);
            let (pem, ca) = (pki.cert_chain_pem.clone(), pki.ca_der.clone());
            (pki, pem, ca)
        }
        Cert::ExpiresIn(days) => {
            let pki = certs::short_lived_pki_for(&names, days);
            let (pem, ca) = (pki.cert_chain_pem.clone(), pki.ca_der.clone());
            (pki, pem, ca)
        }
        Cert::FullChain => {
            let (pki, _, _) = certs::pki_with_intermediate(&names);
            let (pem, ca) = (pki.cert_chain_pem.clone(), pki.ca_der.clone());
            (pki, pem, ca)
        }
        Cert::NoIntermediate => certs::pki_with_intermediate(&names),
    };
    let ca_file = certs::write_ca(&base, &pki);
    let cert_file = base.join("server-cert.pem");
    let key_file = base.join("server-key.pem");
    fs::write(&cert_file, &sent_pem).expect("write cert");
    // Read by the config process, which runs as root (or as us).
    fs::write(&key_file, &pki.key_pem).expect("write key");
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).expect("chmod key");

    let passwd_file = base.join("passwd");
    let passwd: String = USERS
        .iter()
        .map(|(u, p)| format!("{u}:{{PLAIN}}{p}::::::\n"))
        .collect();
    fs::write(&passwd_file, passwd).expect("write passwd");
    fs::set_permissions(&passwd_file, fs::Permissions::from_mode(0o644)).expect("chmod passwd");

    let (mail_owner, mail_ids) = match &who {
        Identity::Root { mail_uid, mail_gid } => {
            (Some((*mail_uid, *mail_gid)), (*mail_uid, *mail_gid))
        }
        Identity::User { uid, gid, .. } => (None, (*uid, *gid)),
    };
    let home_root = base.join("home");
    fs::create_dir(&home_root).expect("create home root");
    for (user, _) in USERS {
        let home = home_root.join(user);
        fs::create_dir(&home).expect("create home");
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).expect("chmod home");
        chown(&home, mail_owner);
        make_maildir(&home.join("Maildir"), mail_owner);
    }
    for dir in ["run", "state"] {
        fs::create_dir(base.join(dir)).expect("create dir");
    }

    let (plain_port, tls_port) = free_port_pair();
    let haproxy_port = features.haproxy.then(|| free_port_pair().0);
    let client = features.sasl.then(|| certs::client_pki_for("alice"));
    let client_ca = base.join("client-ca.pem");
    if let Some(c) = &client {
        fs::write(&client_ca, &c.ca_pem).expect("write client-ca.pem");
    }
    let log_path = base.join("dovecot.log");
    let stderr_path = base.join("stderr.log");
    let conf_path = base.join("dovecot.conf");
    let conf = config(&ConfigParams {
        base: &base,
        who: &who,
        mail_ids,
        plain_port,
        tls_port,
        cert_file: &cert_file,
        key_file: &key_file,
        passwd_file: &passwd_file,
        home_root: &home_root,
        log_path: &log_path,
        imap_zlib: install.imap_zlib,
        client_ca: client.as_ref().map(|_| client_ca.as_path()),
        haproxy_port,
        features,
    });
    fs::write(&conf_path, conf).expect("write dovecot.conf");

    let stderr = fs::File::create(&stderr_path).expect("create stderr.log");
    // The wrapper shell runs Dovecot in the foreground and stops it when its
    // stdin (our lifeline pipe) reaches EOF, i.e. when we drop it or die.
    // It signals the whole group: the master alone would wait a fixed 1 s
    // for its log process. The trap keeps the shell alive to reap the master.
    let script = r#"exec 3<&0
"$1" -F -c "$2" </dev/null &
pid=$!
{ read -r _ <&3; kill -s TERM 0; } &
exec 3<&-
trap : TERM
while :; do
  wait "$pid"; st=$?
  kill -0 "$pid" 2>/dev/null || exit "$st"
done"#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("imaptalk-dovecot")
        .arg(&install.binary)
        .arg(&conf_path)
        .stdin(Stdio::piped())
        .stdout(stderr.try_clone().expect("dup stderr.log"))
        .stderr(stderr)
        .process_group(0) // not hit by the terminal's Ctrl-C; killable as a group
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", install.binary.display()));
    let lifeline = child.stdin.take();

    let mut dovecot = Dovecot {
        child,
        lifeline,
        plain_port,
        tls_port,
        ca_file,
        log_path,
        stderr_path,
        home_root,
        mail_owner,
        compress: install.imap_zlib,
        pki,
        client,
        haproxy_port,
        ready_ca,
        dir,
    };
    match dovecot.wait_ready() {
        Ok(()) => Ok(dovecot),
        Err(why) => {
            let log = dovecot.log();
            let retry = log.contains("Address already in use");
            let report = format!("{why}\n--- {} ---\n{log}", dovecot.log_path.display());
            drop(dovecot);
            Err(StartError { report, retry })
        }
    }
}

impl Dovecot {
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let tls_config = certs::rustls_client_config(&self.ready_ca);
        let mut plain_ok = false;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("Dovecot exited during startup ({status})"));
            }
            if !plain_ok {
                plain_ok = plain_greeting(self.plain_port).is_ok();
            }
            if plain_ok && tls_greeting(self.tls_port, tls_config.clone()).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let plain = plain_greeting(self.plain_port).err().unwrap_or_default();
                let tls = tls_greeting(self.tls_port, tls_config)
                    .err()
                    .unwrap_or_default();
                return Err(format!(
                    "Dovecot not ready after {READY_TIMEOUT:?} (plain port {}: {plain}; TLS port {}: {tls})",
                    self.plain_port, self.tls_port
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn greeting_ok(line: &str) -> Result<(), String> {
    if line.starts_with("* OK") {
        Ok(())
    } else {
        Err(format!("unexpected greeting {line:?}"))
    }
}

fn connect(port: u16) -> Result<TcpStream, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    Ok(tcp)
}

fn plain_greeting(port: u16) -> Result<(), String> {
    let mut line = String::new();
    BufReader::new(connect(port)?)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    greeting_ok(&line)
}

fn tls_greeting(port: u16, config: Arc<rustls::ClientConfig>) -> Result<(), String> {
    let name = ServerName::try_from("localhost").expect("server name");
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, connect(port)?);
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") && line.len() < 1024 {
        match tls.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => line.push(byte[0]),
            Err(e) => return Err(e.to_string()),
        }
    }
    let _ = tls.write_all(b"z LOGOUT\r\n");
    greeting_ok(&String::from_utf8_lossy(&line))
}

/// Two distinct ports the kernel considers free right now. Dovecot binds them
/// a few ms later; the small race is handled by retrying the start.
fn free_port_pair() -> (u16, u16) {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind probe");
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind probe");
    let ports = (
        a.local_addr().expect("addr").port(),
        b.local_addr().expect("addr").port(),
    );
    drop((a, b));
    ports
}

fn kill_group(pgid: u32) {
    // Builtin kill of sh (dash): the only portable way here without libc.
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -s KILL -- -{pgid} 2>/dev/null"))
        .status();
}

fn read_logs(log: &Path, stderr: &Path) -> String {
    let mut out = String::from_utf8_lossy(&fs::read(log).unwrap_or_default()).into_owned();
    let err = fs::read(stderr).unwrap_or_default();
    if !err.is_empty() {
        out.push_str("--- stderr ---\n");
        out.push_str(&String::from_utf8_lossy(&err));
    }
    out
}

/// Maildir names sort by (seconds, microseconds) in Dovecot, which assigns
/// UIDs in that order; keep them strictly increasing so UIDs follow
/// delivery order even for deliveries within the same microsecond.
fn unique_maildir_name() -> String {
    static LAST: Mutex<(u64, u32)> = Mutex::new((0, 0));
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let mut stamp = (now.as_secs(), now.subsec_micros());
    if stamp <= *last {
        stamp = if last.1 >= 999_999 {
            (last.0 + 1, 0)
        } else {
            (last.0, last.1 + 1)
        };
    }
    *last = stamp;
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.M{}P{}Q{seq}.imaptalk-test",
        stamp.0,
        stamp.1,
        std::process::id()
    )
}

struct ConfigParams<'a> {
    base: &'a Path,
    who: &'a Identity,
    mail_ids: (u32, u32),
    plain_port: u16,
    tls_port: u16,
    cert_file: &'a Path,
    key_file: &'a Path,
    passwd_file: &'a Path,
    home_root: &'a Path,
    log_path: &'a Path,
    imap_zlib: bool,
    /// `Features::sasl`: the CA of client certificates.
    client_ca: Option<&'a Path>,
    haproxy_port: Option<u16>,
    features: Features,
}

fn config(p: &ConfigParams) -> String {
    let base = p.base.display();
    let (uid, gid) = p.mail_ids;
    let mut c = format!(
        r#"# Generated by the imaptalk test harness.
protocols = imap
listen = {listen}
base_dir = {base}/run
state_dir = {base}/state
instance_name = imaptalk-test-{plain_port}
log_path = {log}
info_log_path = {log}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = {plaintext}
auth_mechanisms = plain login{mechanisms}
auth_verbose = yes
# Failed logins answer at once instead of after 2 s.
auth_failure_delay = 0
# The proxy tests log one user in twenty times at once (default: 10).
mail_max_userip_connections = 100
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
mail_fsync = never
{external_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN {passwd}
}}
userdb {{
  driver = passwd-file
  args = {passwd}
  default_fields = uid={uid} gid={gid} home={home}/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {listen}
    port = {plain_port}
  }}
  inet_listener imaps {{
    address = {listen}
    port = {tls_port}
    ssl = yes
  }}
{haproxy_listener}}}
"#,
        plain_port = p.plain_port,
        tls_port = p.tls_port,
        listen = if p.features.no_plaintext_auth {
            "127.0.0.1, 127.0.0.2"
        } else {
            "127.0.0.1"
        },
        plaintext = if p.features.no_plaintext_auth {
            "yes"
        } else {
            "no"
        },
        log = p.log_path.display(),
        cert = p.cert_file.display(),
        key = p.key_file.display(),
        passwd = p.passwd_file.display(),
        home = p.home_root.display(),
        mechanisms = if p.client_ca.is_some() {
            " scram-sha-1 scram-sha-256 external anonymous"
        } else {
            ""
        },
        // EXTERNAL checks no password: the certificate named the user.
        external_passdb = if p.client_ca.is_some() {
            "passdb {\n  driver = static\n  args = nopassword=y\n  mechanisms = external\n}\n"
        } else {
            ""
        },
        haproxy_listener = match p.haproxy_port {
            Some(port) => format!(
                "  inet_listener imap_haproxy {{\n    address = 127.0.0.1\n    port = {port}\n    haproxy = yes\n  }}\n"
            ),
            None => String::new(),
        },
    );
    if let Some(ca) = p.client_ca {
        let _ = write!(
            c,
            r#"ssl_ca = <{ca}
ssl_verify_client_cert = yes
ssl_require_crl = no
auth_ssl_username_from_cert = yes
ssl_cert_username_field = commonName
auth_anonymous_username = bob
"#,
            ca = ca.display()
        );
    }
    if p.haproxy_port.is_some() {
        c.push_str("haproxy_trusted_networks = 127.0.0.0/8 ::1\n");
    }
    if p.features.tls13_only {
        c.push_str("ssl_min_protocol = TLSv1.3\n");
    }
    if let Identity::User { name, group, .. } = p.who {
        // Non-root: no user switching and no chroot is possible.
        let _ = write!(
            c,
            r#"default_internal_user = {name}
default_internal_group = {group}
default_login_user = {name}
service anvil {{
  chroot =
}}
service ipc {{
  chroot =
}}
service auth-worker {{
  user = $default_internal_user
}}
"#
        );
    }
    if p.imap_zlib {
        c.push_str("protocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}\n");
    }
    c
}

#[cfg(test)]
mod self_check {
    use super::*;

    #[test]
    fn dovecot_harness_serves_a_delivered_message() {
        let d = Dovecot::start();
        d.deliver("alice", "INBOX", b"Subject: hi\r\n\r\nhello\r\n");
        d.deliver("alice", "Archive", b"Subject: old\r\n\r\nold\r\n");
        let (user, pass) = d.user();
        let mut s = connect(d.plain_port()).expect("connect");
        write!(
            s,
            "a LOGIN {user} {pass}\r\nb STATUS INBOX (MESSAGES)\r\n\
             c STATUS Archive (MESSAGES)\r\nd LOGOUT\r\n"
        )
        .expect("send");
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("read reply");
        assert!(reply.contains("* STATUS INBOX (MESSAGES 1)"), "{reply}");
        assert!(reply.contains("* STATUS Archive (MESSAGES 1)"), "{reply}");
        assert!(reply.contains("d OK"), "{reply}");
        let log = d.log();
        assert!(!log.contains("Error:") && !log.contains("Fatal:"), "{log}");
    }
}
