//! Command-line flags, and their validation into [`Settings`] in one step:
//! once `Settings` exists, nothing later needs to second-guess a flag.

use crate::app::auth::{self, Channel, Login};
use crate::app::check::plan::{self, CheckOptions};
use crate::app::diag::DiagOptions;
use crate::app::render::{OutputFile, OutputOptions};
use crate::app::target::{self, IMAPS_PORT, Scheme};
use crate::core::options::{Input, Security, SessionOptions};
use crate::core::sasl::{self, Mechanism};
use crate::error;
use crate::io::listen::ListenOptions;
use crate::io::tcp::ConnectOptions;
use crate::io::tcp::Family;
use crate::io::tls::{ClientCert, TlsOptions, Version};
use crate::io::transcript::{Literals, TranscriptOptions};
use clap::{ArgGroup, Parser, ValueEnum};
use std::io::IsTerminal;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

// Headings of --help, in the order they appear there.
const CONNECTION: &str = "Connection";
const LOGIN: &str = "Login (-u)";
const SENDING: &str = "Sending commands";
const OUTPUT: &str = "Output";
const INTERACTIVE: &str = "Interactive mode";
const TRANSCRIPT: &str = "Transcript (--log)";
const DIAGNOSTICS: &str = "Certificates and diagnostics";
const PROXY: &str = "Proxy (--listen)";
const CHECK: &str = "Server check (--check)";

#[derive(Parser, Debug)]
#[command(
    name = "imaptalk",
    // Not argv[0]: on Windows that is imaptalk.exe (or a full path).
    bin_name = "imaptalk",
    version,
    about = "Talk IMAP to a server: an interactive client that replaces telnet and openssl s_client",
    long_about = "Talk IMAP to a server by hand or from a script.\n\n\
        Connects over plain TCP, implicit TLS (port 993, imaps://) or STARTTLS, \
        verifies the certificate, tags your commands (a1, a2, …) and frames every \
        response, literals included. With a terminal it is a line-editing prompt; \
        with a script on stdin or -c commands it sends one command at a time, \
        waits for each completion, and writes the server's exact bytes to stdout.",
    after_help = "Examples:\n  \
        imaptalk imap.gmail.com:993\n  \
        imaptalk --starttls mail.example.com\n  \
        imaptalk mail.example.com:993 < commands.imap > out.txt\n  \
        imaptalk host:993 -c 'LOGIN alice secret' -c 'STATUS INBOX (MESSAGES UNSEEN)'\n  \
        imaptalk -u alice host:993 -c 'STATUS INBOX (MESSAGES UNSEEN)'\n  \
        imaptalk --listen 1143 imap.gmail.com:993     # then point a mail client at localhost:1143\n\n\
        Exit codes: 0 ok; 1 a command completed NO or BAD (script and -c mode) or the -u login was refused; \
        2 usage or script error; 3 could not connect (DNS, TCP, proxy, TLS, certificate, \
        STARTTLS, greeting BYE); 4 connection lost, protocol error or timeout; \
        5 --expiry-warn: a certificate expires within DAYS; 130/143 a script ended by \
        SIGINT/SIGTERM (after a LOGOUT when possible). --check: 0 nothing failed, 1 something did, \
        3 the server cannot be reached at all.",
    // --log-literals is about the records of --log FILE, and of --listen's stdout.
    group(ArgGroup::new("records").args(["log", "listen"]).multiple(true))
)]
pub struct Cli {
    /// Server: HOST, HOST:PORT, [IPV6]:PORT, imap://HOST[:PORT] or imaps://HOST[:PORT].
    /// Port 993 and imaps:// mean implicit TLS; otherwise plain TCP on port 143.
    // An Option only for --generate, which takes no SERVER (it is
    // exclusive, so the requirement does not apply to it).
    #[arg(value_name = "SERVER", required = true)]
    pub server: Option<String>,

    /// Use implicit TLS (TLS from the first byte) on any port.
    #[arg(help_heading = CONNECTION, long, conflicts_with = "starttls")]
    pub tls: bool,

    /// Connect in plaintext, then upgrade with STARTTLS before anything else is sent.
    /// Any failure (NO, BAD, PREAUTH, injected bytes) aborts the connection.
    #[arg(help_heading = CONNECTION, long)]
    pub starttls: bool,

    /// PEM file of CA certificates to trust in addition to the system's roots.
    #[arg(help_heading = CONNECTION, long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,

    /// Do not verify the server's certificate (a warning is printed every time).
    #[arg(help_heading = CONNECTION, long)]
    pub insecure: bool,

    /// Trust the server certificate with this SHA-256 fingerprint (hex, colons
    /// optional, may start with sha256:; --show-certs prints it), whatever its
    /// issuer or name, while it is valid; any other certificate is rejected.
    /// Repeatable.
    #[arg(
        help_heading = CONNECTION,
        long,
        value_name = "FINGERPRINT",
        conflicts_with_all = ["insecure", "cafile"]
    )]
    pub pin: Vec<String>,

    /// Name sent as SNI and verified against the certificate [default: the host;
    /// no SNI for an IP address].
    #[arg(help_heading = CONNECTION, long, value_name = "NAME")]
    pub servername: Option<String>,

    /// Seconds allowed for connecting, the TLS handshake and the greeting, and, in
    /// script and -c mode, for each wait on a server response and each send.
    #[arg(help_heading = CONNECTION, long, value_name = "SECS")]
    pub timeout: Option<f64>,

    /// Connect over IPv4 only.
    #[arg(help_heading = CONNECTION, short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Connect over IPv6 only.
    #[arg(help_heading = CONNECTION, short = '6', long = "ipv6")]
    pub ipv6: bool,

    /// Connect through a proxy: socks5://HOST:PORT (the server's name resolved
    /// here), socks5h://HOST:PORT (resolved by the proxy) or http://HOST:PORT
    /// (CONNECT); USER:PASSWORD@ before HOST logs in to the proxy.
    #[arg(help_heading = CONNECTION, long, value_name = "URL")]
    pub proxy: Option<String>,

    /// Send a HAProxy PROXY header (version 1 or 2) first, as a load balancer
    /// in front of the server would.
    #[arg(help_heading = CONNECTION, long, value_name = "VERSION")]
    pub proxy_protocol: Option<ProxyProtocol>,

    /// The oldest TLS version to accept [default: 1.2; older ones are never used].
    #[arg(help_heading = CONNECTION, long, value_name = "VERSION")]
    pub tls_min: Option<TlsVersion>,

    /// The newest TLS version to offer [default: 1.3].
    #[arg(help_heading = CONNECTION, long, value_name = "VERSION")]
    pub tls_max: Option<TlsVersion>,

    /// Append the TLS session keys to FILE in the NSS key log format, for
    /// Wireshark (created with mode 0600; a warning every run) [env: SSLKEYLOGFILE].
    #[arg(help_heading = CONNECTION, long, value_name = "FILE")]
    pub keylog: Option<PathBuf>,

    /// Client certificate (PEM, the chain after it), sent when the server asks
    /// for one; the key may be in the same file.
    #[arg(help_heading = CONNECTION, long, value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC;
    /// not encrypted) [default: the --cert file].
    #[arg(help_heading = CONNECTION, long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Log in as USER right after connecting (after STARTTLS), with the strongest
    /// mechanism offered: SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, else LOGIN. The
    /// password comes from --password-file, IMAPTALK_PASSWORD, or a prompt on the
    /// terminal.
    #[arg(help_heading = LOGIN, short = 'u', long, value_name = "USER", conflicts_with = "show_certs")]
    pub user: Option<String>,

    /// Log in with this SASL mechanism: SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, LOGIN,
    /// EXTERNAL (the --cert certificate; -u is then the optional authorization
    /// identity), ANONYMOUS (-u optional), OAUTHBEARER or XOAUTH2 (with a token).
    #[arg(help_heading = LOGIN, long, value_name = "MECH", conflicts_with = "show_certs")]
    pub sasl: Option<String>,

    /// Read the password for -u from FILE (its last line end is dropped;
    /// at most 4096 bytes).
    #[arg(help_heading = LOGIN, long, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,

    /// Log in with this OAuth2 access token (XOAUTH2 or OAUTHBEARER, as
    /// offered) instead of a password [env: IMAPTALK_OAUTH2_TOKEN].
    #[arg(
        help_heading = LOGIN,
        long,
        value_name = "TOKEN",
        requires = "user",
        conflicts_with = "password_file"
    )]
    pub oauth2_token: Option<crate::core::sasl::Secret>,

    /// Run CMD with the shell (sh; cmd.exe on Windows); its stdout is the
    /// OAuth2 access token for -u (at most 64 KiB: a command printing more
    /// is stopped, and that is an error).
    #[arg(
        help_heading = LOGIN,
        long,
        value_name = "CMD",
        requires = "user",
        conflicts_with_all = ["password_file", "oauth2_token"]
    )]
    pub oauth2_token_command: Option<String>,

    /// Allow -u to send the password or token over an unencrypted connection
    /// to a host other than this machine.
    #[arg(help_heading = LOGIN, long)]
    pub allow_plaintext_auth: bool,

    /// Send this command (repeatable), waiting for each completion, then LOGOUT.
    #[arg(help_heading = SENDING, short = 'c', long = "command", value_name = "CMD")]
    pub commands: Vec<String>,

    /// Script and -c mode: send commands without waiting for each completion
    /// (at most 256 in flight). LOGIN, LOGOUT, SELECT, IDLE, AUTHENTICATE,
    /// STARTTLS, COMPRESS and commands with a literal are still sent alone.
    #[arg(help_heading = SENDING, long)]
    pub pipeline: bool,

    /// After a successful LOGIN or AUTHENTICATE, send COMPRESS DEFLATE when the
    /// server offers COMPRESS=DEFLATE (RFC 4978); output stays the plain protocol.
    #[arg(help_heading = SENDING, long)]
    pub compress: bool,

    /// Prefix of the automatic tags (a1, a2, …).
    #[arg(help_heading = SENDING, long, value_name = "PREFIX", default_value = "a")]
    pub tag_prefix: String,

    /// The most a {@-} or {@PIPE} literal is copied to $TMPDIR before it is
    /// sent (bytes, or with K, M, G: KiB, MiB, GiB); more is an error. A
    /// regular file is never copied; a character device (/dev/zero) is
    /// refused.
    #[arg(help_heading = SENDING, long, value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    pub spool_limit: u64,

    /// Write the server's bytes to stdout exactly as received, even on a terminal.
    #[arg(help_heading = OUTPUT, long)]
    pub raw: bool,

    /// Write what would go to stdout to FILE instead, byte for byte (created
    /// or emptied first, as `> FILE` does): the server's exact bytes, or the
    /// PEM of --show-certs. For shells whose `>` re-encodes (PowerShell 5.1
    /// writes UTF-16).
    #[arg(help_heading = OUTPUT, short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// On a terminal, show long literals in full instead of their first lines.
    #[arg(help_heading = OUTPUT, long)]
    pub full: bool,

    /// No progress bar on stderr for big literals written to a file or pipe.
    #[arg(help_heading = OUTPUT, long)]
    pub quiet: bool,

    /// Also copy every line sent to the server to stderr (passwords masked).
    #[arg(help_heading = OUTPUT, long)]
    pub echo: bool,

    /// Print how long each command took on stderr (`a3 28.1 ms SELECT`);
    /// on a terminal every completion shows it anyway (`(28 ms)`).
    #[arg(help_heading = OUTPUT, long)]
    pub timing: bool,

    /// Keep the interactive history in FILE [default: imaptalk/history in the
    /// data directory: ~/.local/share (also on macOS), %LOCALAPPDATA% on
    /// Windows], private to the user (mode 0600; on Windows, the profile's
    /// permissions). LOGIN and AUTHENTICATE lines and anything typed for a
    /// continuation or literal are never stored.
    #[arg(help_heading = INTERACTIVE, long, value_name = "FILE", conflicts_with = "no_history")]
    pub history: Option<PathBuf>,

    /// Keep no history on disk (only in memory, for this session).
    #[arg(help_heading = INTERACTIVE, long)]
    pub no_history: bool,

    /// Colour tagged OK/NO/BAD, BYE and ALERT on a terminal (NO_COLOR is honoured).
    #[arg(help_heading = OUTPUT, long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Append a transcript of the session to FILE (created with mode 0600; on
    /// Windows with the directory's permissions): every
    /// line sent and received with a timestamp, and TLS and COMPRESS events.
    /// Passwords and SASL data are written as ****.
    #[arg(help_heading = TRANSCRIPT, long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// What the transcript (and the records of --listen on a stdout that is not a
    /// terminal) keeps of literal data: all of it (escaped), or only its size.
    #[arg(help_heading = TRANSCRIPT, long, value_enum, value_name = "WHAT", default_value_t = LogLiterals::Full, requires = "records")]
    pub log_literals: LogLiterals,

    /// Print connection and TLS details to stderr: the address connected to,
    /// timings, TLS version, cipher suite, key exchange, and each certificate
    /// of the chain with its fingerprint, validity and the verification result.
    #[arg(help_heading = DIAGNOSTICS, short = 'v', long)]
    pub verbose: bool,

    /// Print the server's certificate chain as PEM on stdout (a summary goes
    /// to stderr) and exit; works with --tls and --starttls.
    #[arg(help_heading = DIAGNOSTICS, long, conflicts_with = "commands")]
    pub show_certs: bool,

    /// Exit with code 5 when a certificate of the chain expires within DAYS
    /// days (a monitoring check; the session itself still runs).
    #[arg(help_heading = DIAGNOSTICS, long, value_name = "DAYS")]
    pub expiry_warn: Option<u32>,

    /// Proxy mode: listen on PORT (of 127.0.0.1; ADDR:PORT for another address)
    /// and relay each mail client that connects to SERVER over a connection of
    /// its own (the connection flags apply to it), showing both sides of every
    /// conversation, passwords masked; on a stdout that is not a terminal, one
    /// --log record per line. PORT 0 picks a free port. Ctrl-C stops.
    #[arg(
        help_heading = PROXY,
        long,
        value_name = "[ADDR:]PORT",
        conflicts_with_all = ["commands", "user", "pipeline", "compress", "show_certs", "expiry_warn", "raw", "echo", "timing"]
    )]
    pub listen: Option<String>,

    /// Allow --listen on an address other machines can reach (0.0.0.0, a LAN
    /// address): whoever connects gets a connection to SERVER through imaptalk.
    #[arg(help_heading = PROXY, long, requires = "listen")]
    pub listen_any: bool,

    /// With --listen: TLS from the client's first byte (as on port 993). Without
    /// it, clients connect in plaintext and may upgrade with STARTTLS.
    #[arg(help_heading = PROXY, long, requires = "listen")]
    pub listen_tls: bool,

    /// With --listen: the certificate chain (PEM, leaf first) shown to clients that
    /// use TLS [default: one generated at start, for localhost, 127.0.0.1 and ::1,
    /// whose SHA-256 fingerprint is printed].
    #[arg(help_heading = PROXY, long, value_name = "FILE", requires_all = ["listen", "listen_key"])]
    pub listen_cert: Option<PathBuf>,

    /// The private key (PEM) of --listen-cert.
    #[arg(help_heading = PROXY, long, value_name = "FILE", requires_all = ["listen", "listen_cert"])]
    pub listen_key: Option<PathBuf>,

    /// Check the server's set-up and print a report, one finding per line
    /// (OK, WARN or FAIL, with what to change): addresses, greeting, TLS
    /// versions, cipher, certificate chain, name, expiry and key, STARTTLS
    /// and its command injection, plaintext logins, capabilities, ID,
    /// latency; with -u also a login (only over TLS, read-only). Without a
    /// port in SERVER both 143 (STARTTLS) and 993 (TLS) are checked. Exit 0
    /// when nothing fails, 1 when something does, 3 when the server cannot
    /// be reached at all.
    #[arg(
        help_heading = CHECK,
        long,
        conflicts_with_all = ["commands", "listen", "show_certs", "expiry_warn", "insecure", "pipeline", "compress", "log", "raw", "echo", "timing", "allow_plaintext_auth"]
    )]
    pub check: bool,

    /// With --check: write the report as one JSON document (findings with
    /// stable ids, levels and values), for monitoring.
    #[arg(help_heading = CHECK, long, requires = "check")]
    pub json: bool,

    /// With --check: a WARN fails the check too (exit 1).
    #[arg(help_heading = CHECK, long, requires = "check")]
    pub strict: bool,

    /// Write a shell completion script or the man page to stdout and exit
    /// (no SERVER).
    #[arg(long, value_enum, value_name = "KIND", exclusive = true)]
    pub generate: Option<Generate>,
}

/// What `--generate` writes (see [`crate::app::generation`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    CompleteBash,
    CompleteZsh,
    CompleteFish,
    CompleteElvish,
    CompletePowershell,
    Man,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// `--proxy-protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProxyProtocol {
    V1,
    V2,
}

/// `--tls-min` / `--tls-max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum TlsVersion {
    #[value(name = "1.2")]
    V1_2,
    #[value(name = "1.3")]
    V1_3,
}

impl From<TlsVersion> for Version {
    fn from(v: TlsVersion) -> Version {
        match v {
            TlsVersion::V1_2 => Version::Tls12,
            TlsVersion::V1_3 => Version::Tls13,
        }
    }
}

/// `--log-literals` (the transcript's own enum knows nothing of clap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLiterals {
    /// The data, escaped, split at its line ends.
    Full,
    /// Only the size (messages can be large, or private).
    Size,
}

impl From<LogLiterals> for Literals {
    fn from(l: LogLiterals) -> Literals {
        match l {
            LogLiterals::Full => Literals::Full,
            LogLiterals::Size => Literals::Size,
        }
    }
}

/// What the run will do, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub connect: ConnectOptions,
    pub tls: TlsOptions,
    pub session: SessionOptions,
    pub output: OutputOptions,
    pub diag: DiagOptions,
    pub input: Input,
    /// Where the interactive history is kept; None: in memory only.
    pub history: Option<PathBuf>,
    /// `--log FILE`: where the transcript is appended, and what it keeps.
    pub log: Option<TranscriptOptions>,
    /// `-u`: log in automatically (the secret is read before connecting).
    pub login: Option<Login>,
    /// `--listen`: proxy mode.
    pub listen: Option<ListenOptions>,
    /// `--check`: a health report instead of a session.
    pub check: Option<CheckOptions>,
}

impl Cli {
    pub fn settings(self) -> anyhow::Result<Settings> {
        let server = self
            .server
            .as_deref()
            .ok_or_else(|| error::usage("no SERVER given"))?;
        let target = target::parse(server).map_err(error::usage)?;
        let security = match (self.tls, self.starttls, target.scheme) {
            (true, _, Some(Scheme::Imap)) => {
                return Err(error::usage(
                    "--tls contradicts imap:// (use imaps:// or HOST:PORT)",
                ));
            }
            (_, true, Some(Scheme::Imaps)) => {
                return Err(error::usage(
                    "--starttls contradicts imaps:// (use imap:// or HOST:PORT)",
                ));
            }
            (true, _, _) | (false, false, Some(Scheme::Imaps)) => Security::Tls,
            (_, true, _) => Security::StartTls,
            (false, false, None) if target.port == IMAPS_PORT => Security::Tls,
            _ => Security::Plain,
        };
        let timeout = match self.timeout {
            None => None,
            Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Some(Duration::from_secs_f64(s)),
            Some(s) => {
                return Err(error::usage(format!(
                    "--timeout {s}: give a positive number of seconds"
                )));
            }
        };
        if !valid_tag_prefix(&self.tag_prefix) {
            return Err(error::usage(format!(
                "--tag-prefix '{}': use letters, digits or '.', at most 16",
                self.tag_prefix
            )));
        }
        if let Some(f) = &self.cafile
            && !f.is_file()
        {
            return Err(error::usage(format!(
                "--cafile {}: no such file",
                f.display()
            )));
        }
        if security == Security::Plain && (self.show_certs || self.expiry_warn.is_some()) {
            let flag = if self.show_certs {
                "--show-certs"
            } else {
                "--expiry-warn"
            };
            return Err(error::usage(format!(
                "{flag} needs a TLS connection: add --tls (implicit TLS, port 993) or --starttls (port 143)"
            )));
        }
        let pins = self
            .pin
            .iter()
            .map(|p| crate::io::tls::parse_pin(p).map_err(error::usage))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let tls_flags = [
            ("--cafile", self.cafile.is_some()),
            ("--pin", !pins.is_empty()),
            ("--servername", self.servername.is_some()),
            ("--cert", self.cert.is_some()),
            ("--tls-min", self.tls_min.is_some()),
            ("--tls-max", self.tls_max.is_some()),
        ];
        let given: Vec<&str> = tls_flags.iter().filter(|f| f.1).map(|f| f.0).collect();
        if security == Security::Plain && !given.is_empty() && !self.check {
            error::say(&format!(
                "imaptalk: warning: on a plaintext connection {} apply only to a STARTTLS typed later (add --starttls to upgrade at once, or --tls)",
                given.join(", ")
            ));
        }
        let proxy = match &self.proxy {
            Some(url) => Some(crate::io::proxy::parse(url).map_err(error::usage)?),
            None => None,
        };
        let stdin_tty = std::io::stdin().is_terminal();
        let stdout_tty = std::io::stdout().is_terminal();
        let input = if !self.commands.is_empty() {
            // All of them are known now: one that cannot work is an error
            // before anything is sent, not after the commands before it.
            for c in &self.commands {
                if let Some(e) = crate::core::meta::unusable_in_script(c) {
                    return Err(error::usage(format!(
                        "-c '{}': {e}; nothing was sent",
                        crate::text::escape_str(c)
                    )));
                }
            }
            Input::Commands(self.commands)
        } else if stdin_tty {
            Input::Interactive
        } else {
            Input::Stdin
        };
        // -o FILE: as if stdout were that file.
        let render = stdout_tty && !self.raw && self.output.is_none();
        let color = render
            && match self.color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => {
                    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                        && std::env::var("TERM").map_or(true, |t| t != "dumb")
                }
            }
            && crate::platform::console::enable_colors();
        let sasl = match &self.sasl {
            None => None,
            Some(name) => Some(Mechanism::parse(name).ok_or_else(|| {
                error::usage(format!(
                    "--sasl {}: imaptalk knows {}",
                    crate::text::escape_str(name),
                    sasl::MECHANISMS.map(Mechanism::name).join(", ")
                ))
            })?),
        };
        let secretless = sasl.is_some_and(Mechanism::secretless);
        if sasl.is_some() && !secretless && self.user.is_none() {
            return Err(error::usage(format!(
                "--sasl {} needs -u USER",
                sasl.map_or("", Mechanism::name)
            )));
        }
        if secretless
            && (self.password_file.is_some()
                || self.oauth2_token.is_some()
                || self.oauth2_token_command.is_some())
        {
            return Err(error::usage(format!(
                "--sasl {} uses no password or token",
                sasl.map_or("", Mechanism::name)
            )));
        }
        if sasl == Some(Mechanism::External) && self.cert.is_none() {
            return Err(error::usage(
                "--sasl EXTERNAL logs in with the client certificate: give it with --cert FILE",
            ));
        }
        let user = match (self.user, secretless) {
            (None, true) => Some(String::new()),
            (u, _) => u,
        };
        let login = user.map(|user| {
            use crate::app::auth::{PASSWORD_ENV, Source, TOKEN_ENV};
            let env_token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
            let source = match (
                self.oauth2_token_command,
                self.oauth2_token,
                self.password_file,
            ) {
                (Some(cmd), _, _) => Source::TokenCommand(cmd),
                (_, Some(token), _) => Source::Token(token),
                (_, _, Some(file)) => Source::Password { file: Some(file) },
                // An exported password wins over an exported token.
                _ => match env_token {
                    Some(t) if std::env::var_os(PASSWORD_ENV).is_none() => {
                        Source::Token(crate::core::sasl::Secret::new(t))
                    }
                    _ => Source::Password { file: None },
                },
            };
            let source = if secretless { Source::Nothing } else { source };
            Login {
                user,
                source,
                secret: None,
                mech: sasl,
            }
        });
        if let Some(l) = &login
            && let Some(m) = l.mech
            && !m.secretless()
            && m.oauth2() != l.source.is_oauth2()
        {
            return Err(error::usage(if m.oauth2() {
                format!(
                    "--sasl {} needs an OAuth2 token (--oauth2-token-command, --oauth2-token or IMAPTALK_OAUTH2_TOKEN)",
                    m.name()
                )
            } else {
                format!("--sasl {} needs a password, not an OAuth2 token", m.name())
            }));
        }
        // --check sends a credential only over TLS, whatever the port.
        if let Some(l) = login
            .as_ref()
            .filter(|l| !l.source.is_none() && !self.check)
        {
            let what = if l.source.is_oauth2() {
                "an OAuth2 token"
            } else {
                "a password"
            };
            // Through a proxy elsewhere, even "localhost" is another machine.
            let rule_host = match &proxy {
                Some(p) if !auth::is_loopback(&p.host) => {
                    format!("{} (through {})", target.host, p.display())
                }
                _ => target.host.clone(),
            };
            if let Some(why) = auth::plaintext_refusal(
                Channel::of(security),
                &rule_host,
                self.allow_plaintext_auth,
                what,
            ) {
                return Err(error::usage(why));
            }
        }
        let listen = match &self.listen {
            Some(spec) => Some(ListenOptions {
                listen: listen_address(spec, self.listen_any).map_err(error::usage)?,
                tls: self.listen_tls,
                cert: self.listen_cert.clone().zip(self.listen_key.clone()),
                literals: self.log_literals.into(),
            }),
            None => None,
        };
        let check = self.check.then(|| CheckOptions {
            ports: if target::names_port(server) || target.scheme == Some(Scheme::Imaps) {
                plan::plan(Some(target.port), security == Security::Tls)
            } else if self.tls {
                plan::plan(Some(IMAPS_PORT), true)
            } else if self.starttls || target.scheme == Some(Scheme::Imap) {
                plan::plan(Some(target::IMAP_PORT), false)
            } else {
                plan::plan(None, false)
            },
            json: self.json,
            strict: self.strict,
        });
        let servername = self.servername.unwrap_or_else(|| target.host.clone());
        let (tls_min, tls_max) = (
            self.tls_min.unwrap_or(TlsVersion::V1_2),
            self.tls_max.unwrap_or(TlsVersion::V1_3),
        );
        if tls_min > tls_max {
            return Err(error::usage(
                "--tls-min is newer than --tls-max: no TLS version is left",
            ));
        }
        // --keylog wins over the variable curl, Firefox and Chrome honour.
        let keylog = self.keylog.or_else(|| {
            std::env::var_os("SSLKEYLOGFILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        for (flag, file) in [("--cert", &self.cert), ("--key", &self.key)] {
            if let Some(f) = file
                && !f.is_file()
            {
                return Err(error::usage(format!(
                    "{flag} {}: no such file",
                    f.display()
                )));
            }
        }
        let client_cert = self.cert.map(|cert| ClientCert {
            key: self.key.unwrap_or_else(|| cert.clone()),
            cert,
        });
        let history = match (self.no_history, self.history) {
            (true, _) => None,
            (false, Some(f)) => Some(f),
            (false, None) => default_history(),
        };
        // Last, once every flag is known to be good: as `> FILE` does, the
        // file is created (or emptied) before anything is connected.
        let file = match self.output {
            Some(path) => Some(OutputFile::create(path.clone()).map_err(|e| {
                error::usage(format!(
                    "-o {}: {}",
                    path.display(),
                    crate::text::io_text(&e)
                ))
            })?),
            None => None,
        };
        Ok(Settings {
            connect: ConnectOptions {
                host: target.host.clone(),
                port: target.port,
                timeout,
                verbose: self.verbose,
                family: match (self.ipv4, self.ipv6) {
                    (true, _) => Some(Family::V4),
                    (_, true) => Some(Family::V6),
                    _ => None,
                },
                proxy,
                proxy_protocol: self.proxy_protocol.map(|v| match v {
                    ProxyProtocol::V1 => crate::io::proxy::Header::V1,
                    ProxyProtocol::V2 => crate::io::proxy::Header::V2,
                }),
            },
            tls: TlsOptions {
                cafile: self.cafile,
                insecure: self.insecure,
                pins,
                servername,
                min: tls_min.into(),
                max: tls_max.into(),
                keylog,
                client_cert,
            },
            session: SessionOptions {
                security,
                timeout,
                tag_prefix: self.tag_prefix,
                echo: self.echo,
                timing: self.timing,
                pipeline: self.pipeline,
                compress: self.compress,
                allow_plaintext_auth: self.allow_plaintext_auth,
                spool_limit: self.spool_limit,
            },
            output: OutputOptions {
                render,
                color,
                full: self.full,
                quiet: self.quiet,
                file: file.clone(),
            },
            diag: DiagOptions {
                verbose: self.verbose,
                show_certs: self.show_certs,
                pem_to: file,
                expiry_warn: self.expiry_warn,
            },
            input,
            history,
            log: self.log.map(|path| TranscriptOptions {
                path,
                literals: self.log_literals.into(),
            }),
            login,
            listen,
            check,
        })
    }
}

/// `--listen [ADDR:]PORT`: a port alone is on 127.0.0.1; an address that
/// other machines can reach needs `--listen-any`.
fn listen_address(spec: &str, any: bool) -> Result<SocketAddr, String> {
    let addr = if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
        spec.parse::<u16>()
            .ok()
            .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    } else if let Some(port) = spec.strip_prefix("localhost:") {
        port.parse::<u16>()
            .ok()
            .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    } else {
        spec.parse::<SocketAddr>().ok()
    };
    let Some(addr) = addr else {
        return Err(format!(
            "--listen {spec}: give PORT, ADDR:PORT or [IPV6]:PORT (ADDR an IP address, or localhost)"
        ));
    };
    if !addr.ip().is_loopback() && !any {
        return Err(format!(
            "--listen {spec}: {} can be reached from other machines, and whoever connects gets a connection to SERVER; add --listen-any if that is what you want",
            addr.ip()
        ));
    }
    Ok(addr)
}

/// `--spool-limit`: `1048576`, `512K`, `256M`, `2G` (binary units).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err("a size is a number of bytes, or one with K, M, G or T".into()),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| "a size is a number of bytes, or one with K, M, G or T".into())
}

/// A flag error from clap as the one line every other failure is:
/// `imaptalk: invalid value 'x' for '--timeout <SECS>' (see --help)`.
/// clap's own rendering spreads it over several lines with a usage
/// block; its message, tip and list of possible values are kept.
pub fn usage_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect();
    let mut line = String::from("imaptalk: ");
    for (i, part) in parts.iter().enumerate() {
        let part = part.strip_prefix("error: ").unwrap_or(part);
        if i > 0 {
            // "required arguments were not provided:" is followed by the
            // arguments; anything else (a tip, possible values) is an aside.
            line.push_str(if parts[i - 1].ends_with(':') {
                " "
            } else {
                "; "
            });
        }
        line.push_str(part);
    }
    line.push_str(" (see --help)");
    line
}

/// `imaptalk/history` in the platform's data directory (see
/// [`data_dir`](crate::platform::files::data_dir)); None when there is no
/// home directory.
fn default_history() -> Option<PathBuf> {
    Some(
        crate::platform::files::data_dir()?
            .join("imaptalk")
            .join("history"),
    )
}

fn valid_tag_prefix(p: &str) -> bool {
    !p.is_empty() && p.len() <= 16 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> anyhow::Result<Settings> {
        let mut v = vec!["imaptalk"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).unwrap().settings()
    }

    #[test]
    fn security_from_port_scheme_and_flags() {
        let s = |a: &[&str]| settings(a).unwrap().session.security;
        assert_eq!(s(&["h"]), Security::Plain);
        assert_eq!(s(&["h:993"]), Security::Tls);
        assert_eq!(s(&["imaps://h"]), Security::Tls);
        assert_eq!(s(&["imap://h"]), Security::Plain);
        assert_eq!(s(&["--tls", "h:1993"]), Security::Tls);
        assert_eq!(s(&["--starttls", "h"]), Security::StartTls);
        assert_eq!(s(&["--starttls", "imap://h"]), Security::StartTls);
        assert!(settings(&["--starttls", "imaps://h"]).is_err());
        assert!(settings(&["--tls", "imap://h"]).is_err());
        assert!(Cli::try_parse_from(["imaptalk", "--tls", "--starttls", "h"]).is_err());
    }

    #[test]
    fn connection_flags() {
        let s = settings(&["-6", "h"]).unwrap();
        assert_eq!(s.connect.family, Some(Family::V6));
        assert_eq!(
            settings(&["--ipv4", "h"]).unwrap().connect.family,
            Some(Family::V4)
        );
        assert_eq!(settings(&["h"]).unwrap().connect.family, None);
        let t = settings(&["--tls-max", "1.2", "h:993"]).unwrap().tls;
        assert_eq!((t.min, t.max), (Version::Tls12, Version::Tls12));
        let t = settings(&["h:993"]).unwrap().tls;
        assert_eq!((t.min, t.max), (Version::Tls12, Version::Tls13));
        assert!(settings(&["--tls-min", "1.3", "--tls-max", "1.2", "h:993"]).is_err());
        assert!(Cli::try_parse_from(["imaptalk", "--tls-min", "1.0", "h"]).is_err());
        let c = settings(&["--proxy", "socks5h://u:p@127.0.0.1:9050", "h"]).unwrap();
        let p = c.connect.proxy.unwrap();
        assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 9050));
        assert!(settings(&["--proxy", "socks4://h:1", "h"]).is_err());
        let c = settings(&["--proxy-protocol", "v2", "h"]).unwrap();
        assert_eq!(c.connect.proxy_protocol, Some(crate::io::proxy::Header::V2));
        assert!(Cli::try_parse_from(["imaptalk", "--key", "k.pem", "h"]).is_err());
        assert!(settings(&["--cert", "/nonexistent/c.pem", "h:993"]).is_err());
        assert!(Cli::try_parse_from(["imaptalk", "--pin", "00", "--insecure", "h"]).is_err());
    }

    #[test]
    fn sasl_flags() {
        let s = settings(&["--sasl", "anonymous", "h:993"]).unwrap();
        let l = s.login.unwrap();
        assert_eq!((l.user.as_str(), l.mech), ("", Some(Mechanism::Anonymous)));
        assert!(l.source.is_none());
        let s = settings(&["-u", "a", "--sasl", "SCRAM-SHA-1", "h:993"]).unwrap();
        assert_eq!(s.login.unwrap().mech, Some(Mechanism::ScramSha1));
        assert!(settings(&["--sasl", "PLAIN", "h:993"]).is_err());
        assert!(settings(&["--sasl", "EXTERNAL", "h:993"]).is_err());
        assert!(settings(&["--sasl", "NTLM", "-u", "a", "h:993"]).is_err());
        // No secret: no plaintext refusal either.
        assert!(settings(&["--sasl", "ANONYMOUS", "mail.example.com"]).is_ok());
        // Through a proxy elsewhere, localhost is another machine.
        let e = settings(&[
            "-u",
            "a",
            "--proxy",
            "socks5://proxy.example:1080",
            "localhost",
        ])
        .unwrap_err();
        assert!(
            crate::error::message(&e).contains("through socks5://proxy.example:1080"),
            "{e}"
        );
        assert!(settings(&["-u", "a", "--proxy", "socks5://127.0.0.1:1080", "localhost"]).is_ok());
    }

    #[test]
    fn listen_addresses() {
        let p = |a: &[&str]| settings(a).map(|s| s.listen.map(|p| p.listen));
        assert_eq!(p(&["h"]).unwrap(), None);
        assert_eq!(
            p(&["--listen", "1143", "h"]).unwrap(),
            Some("127.0.0.1:1143".parse().unwrap())
        );
        assert_eq!(
            p(&["--listen", "localhost:0", "h"]).unwrap(),
            Some("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(
            p(&["--listen", "[::1]:1143", "h"]).unwrap(),
            Some("[::1]:1143".parse().unwrap())
        );
        let e = p(&["--listen", "0.0.0.0:1143", "h"]).unwrap_err();
        assert!(e.to_string().contains("--listen-any"), "{e}");
        assert_eq!(
            p(&["--listen", "0.0.0.0:1143", "--listen-any", "h"]).unwrap(),
            Some("0.0.0.0:1143".parse().unwrap())
        );
        for bad in ["", "x", "70000", "host.example:1143", "1.2.3.4"] {
            assert!(p(&["--listen", bad, "h"]).is_err(), "{bad}");
        }
        let s = settings(&["--listen", "0", "--listen-tls", "h:993"]).unwrap();
        let listen = s.listen.unwrap();
        assert!(listen.tls && listen.cert.is_none());
        let s = settings(&[
            "--listen",
            "0",
            "--listen-cert",
            "c",
            "--listen-key",
            "k",
            "h",
        ])
        .unwrap();
        assert_eq!(
            s.listen.unwrap().cert,
            Some((PathBuf::from("c"), PathBuf::from("k")))
        );
        for args in [
            &["--listen-tls", "h"][..],
            &["--listen-any", "h"],
            &["--listen", "0", "--listen-cert", "c", "h"],
            &["--listen", "0", "-c", "NOOP", "h"],
            &["--listen", "0", "-u", "alice", "h"],
            &["--listen", "0", "--raw", "h"],
        ] {
            let mut v = vec!["imaptalk"];
            v.extend_from_slice(args);
            assert!(Cli::try_parse_from(v).is_err(), "{args:?}");
        }
        // --log-literals goes with --log or with --listen's records.
        let s = settings(&["--listen", "0", "--log-literals", "size", "h"]).unwrap();
        assert_eq!(s.listen.unwrap().literals, Literals::Size);
    }

    #[test]
    fn check_ports_and_flags() {
        let ports = |a: &[&str]| {
            let mut v = vec!["--check"];
            v.extend_from_slice(a);
            settings(&v)
                .unwrap()
                .check
                .unwrap()
                .ports
                .iter()
                .map(|p| (p.number, p.implicit))
                .collect::<Vec<_>>()
        };
        assert_eq!(ports(&["h"]), [(143, false), (993, true)]);
        assert_eq!(ports(&["h:993"]), [(993, true)]);
        assert_eq!(ports(&["h:1143"]), [(1143, false)]);
        assert_eq!(ports(&["[::1]:1993", "--tls"]), [(1993, true)]);
        assert_eq!(ports(&["--tls", "h"]), [(993, true)]);
        assert_eq!(ports(&["--starttls", "h"]), [(143, false)]);
        assert_eq!(ports(&["--starttls", "h:993"]), [(993, false)]);
        assert_eq!(ports(&["imaps://h"]), [(993, true)]);
        assert_eq!(ports(&["imap://h/"]), [(143, false)]);
        assert!(settings(&["h"]).unwrap().check.is_none());
        let c = settings(&["--check", "--json", "--strict", "h"])
            .unwrap()
            .check
            .unwrap();
        assert!(c.json && c.strict);
        // The check logs in over TLS only: the plaintext rule has nothing
        // to refuse, whatever the port.
        assert!(settings(&["--check", "-u", "bob", "mail.example.com"]).is_ok());
        for args in [
            &["--check", "--insecure", "h"][..],
            &["--json", "h"],
            &["--strict", "h"],
            &["--check", "--listen", "0", "h"],
            &["--check", "--show-certs", "h:993"],
            &["--check", "--expiry-warn", "9", "h:993"],
            &["--check", "-c", "NOOP", "h"],
            &["--check", "--allow-plaintext-auth", "h"],
        ] {
            let mut v = vec!["imaptalk"];
            v.extend_from_slice(args);
            assert!(Cli::try_parse_from(v).is_err(), "{args:?}");
        }
    }

    #[test]
    fn spool_limit_sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("3MiB"), Ok(3 << 20));
        for bad in ["", "M", "1.5G", "-1", "10X", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(
            settings(&["h"]).unwrap().session.spool_limit,
            crate::io::fileliteral::SPOOL_LIMIT
        );
    }

    #[test]
    fn validation() {
        assert!(settings(&["--timeout", "0", "h"]).is_err());
        assert!(settings(&["--timeout=-1", "h"]).is_err());
        assert_eq!(
            settings(&["--timeout", "1.5", "h"])
                .unwrap()
                .session
                .timeout,
            Some(Duration::from_millis(1500))
        );
        assert!(settings(&["--tag-prefix", "a b", "h"]).is_err());
        assert!(settings(&["--tag-prefix", "", "h"]).is_err());
        assert!(settings(&["--cafile", "/nonexistent/ca.pem", "h:993"]).is_err());
        assert_eq!(settings(&["h"]).unwrap().tls.servername, "h");
        assert_eq!(settings(&["--no-history", "h"]).unwrap().history, None);
        assert_eq!(
            settings(&["--history", "/x/h", "h"]).unwrap().history,
            Some(PathBuf::from("/x/h"))
        );
        assert!(Cli::try_parse_from(["imaptalk", "--history", "f", "--no-history", "h"]).is_err());
        assert!(Cli::try_parse_from(["imaptalk", "--log-literals", "size", "h"]).is_err());
        let s = settings(&["--log", "/x/t", "--log-literals", "size", "h"]).unwrap();
        let log = s.log.unwrap();
        assert_eq!(
            (log.path, log.literals),
            (PathBuf::from("/x/t"), Literals::Size)
        );
        let log = settings(&["--log", "/x/t", "h"]).unwrap().log.unwrap();
        assert_eq!(log.literals, Literals::Full);
        assert!(settings(&["h"]).unwrap().log.is_none());
        let e = settings(&["--show-certs", "h"]).unwrap_err();
        assert!(e.to_string().contains("--starttls"), "{e}");
        assert!(settings(&["--expiry-warn", "3", "h:143"]).is_err());
        let s = settings(&["-v", "--show-certs", "--expiry-warn", "30", "h:993"]).unwrap();
        assert!(s.diag.verbose && s.diag.show_certs && s.diag.expiry_warn == Some(30));
        assert!(s.connect.verbose);
        assert!(Cli::try_parse_from(["imaptalk", "--show-certs", "-c", "NOOP", "h:993"]).is_err());
        // -u: plaintext to another machine is refused before connecting.
        let e = settings(&["-u", "bob", "mail.example.com"]).unwrap_err();
        assert!(crate::error::message(&e).contains("--starttls"), "{e}");
        assert!(settings(&["-u", "bob", "--allow-plaintext-auth", "mail.example.com"]).is_ok());
        assert!(settings(&["-u", "bob", "127.0.0.1"]).is_ok());
        assert!(settings(&["-u", "bob", "--starttls", "mail.example.com"]).is_ok());
        assert!(Cli::try_parse_from(["imaptalk", "--password-file", "f", "h"]).is_err());
        assert!(
            Cli::try_parse_from([
                "imaptalk",
                "-u",
                "b",
                "--oauth2-token",
                "t",
                "--password-file",
                "f",
                "h"
            ])
            .is_err()
        );
        let s = settings(&["-u", "b", "--oauth2-token", "t", "h:993"]).unwrap();
        assert!(s.login.unwrap().source.is_oauth2());
        assert_eq!(
            settings(&["--servername", "imap.test", "127.0.0.1:993"])
                .unwrap()
                .tls
                .servername,
            "imap.test"
        );
    }
}
