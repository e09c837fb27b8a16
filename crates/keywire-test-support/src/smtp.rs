//! A real, small SMTP server on 127.0.0.1 (RFC 5321, plain text, no TLS) for testing email
//! delivery: it speaks EHLO/HELO, AUTH PLAIN and LOGIN (RFC 4954, checking the credentials),
//! MAIL, RCPT, DATA (with dot-unstuffing), RSET, NOOP and QUIT, answers with the reply and
//! enhanced status codes real servers use, records every session and every accepted message,
//! and can be told to fail a stage with a chosen reply (a `451` or a `550`).
//!
//! Each connection is served by a thread of its own (blocking I/O), so the server works under
//! any test runtime.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The name the server gives itself.
pub const SERVER_NAME: &str = "smtp.keywire.test";
/// The most bytes of one message it accepts (advertised as `SIZE`).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// The most recipients of one message.
pub const MAX_RECIPIENTS: usize = 100;
/// RFC 5321 §4.5.3.1.6: a command line is at most 512 octets, CRLF included.
const MAX_COMMAND_LINE: usize = 512;
/// RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets, CRLF included.
const MAX_TEXT_LINE: usize = 1000;

/// A step of the SMTP dialogue that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The `220` greeting.
    Greeting,
    /// `AUTH`, after the credentials were received (whatever they are).
    Auth,
    /// `MAIL FROM`.
    MailFrom,
    /// `RCPT TO` (every recipient).
    RcptTo,
    /// The end of `DATA` (the message was received, then refused).
    Data,
}

/// How the server behaves.
#[derive(Debug, Clone, Default)]
pub struct SmtpConfig {
    /// The user name and password it accepts; `None`: no `AUTH` offered or needed.
    pub credentials: Option<(String, String)>,
    /// Replies that replace the normal one at a stage: `(stage, code, text)`, e.g.
    /// `(Stage::Data, 451, "4.3.0 Try again later")`.
    pub failures: Vec<(Stage, u16, String)>,
}

impl SmtpConfig {
    /// A server that offers `AUTH PLAIN LOGIN` and requires these credentials before `MAIL`.
    pub fn with_credentials(user: &str, password: &str) -> Self {
        SmtpConfig {
            credentials: Some((user.to_owned(), password.to_owned())),
            failures: Vec::new(),
        }
    }

    /// The same server, answering `code text` at `stage`.
    pub fn failing(mut self, stage: Stage, code: u16, text: &str) -> Self {
        self.failures.push((stage, code, text.to_owned()));
        self
    }
}

/// A message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The `MAIL FROM` address (without `<>`).
    pub from: String,
    /// The `RCPT TO` addresses, in order.
    pub to: Vec<String>,
    /// The message as received (headers and body, CRLF line ends, dots unstuffed).
    pub data: String,
    /// The user it authenticated as, if it did.
    pub authenticated_as: Option<String>,
}

impl Mail {
    /// The first header of that name (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(value) = found.as_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                found = Some(v.trim().to_owned());
            }
        }
        found
    }
}

/// One connection, as the server saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// Every command verb received, upper-case, in order (`EHLO`, `AUTH`, `MAIL`, ..., `QUIT`).
    /// Arguments are not kept: `AUTH` lines carry credentials.
    pub commands: Vec<String>,
    /// The user it authenticated as, if it did.
    pub authenticated_as: Option<String>,
    /// Whether a wrong user name or password was presented.
    pub auth_failed: bool,
}

#[derive(Default)]
struct Recorded {
    sessions: Vec<Session>,
    mails: Vec<Mail>,
}

/// A running SMTP server. Stops accepting when dropped.
pub struct SmtpServer {
    addr: SocketAddr,
    recorded: Arc<Mutex<Recorded>>,
    stop: Arc<AtomicBool>,
}

impl SmtpServer {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start(config: SmtpConfig) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let config = Arc::new(config);
        {
            let recorded = recorded.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let index = {
                        let mut r = recorded.lock().expect("smtp lock");
                        r.sessions.push(Session::default());
                        r.sessions.len() - 1
                    };
                    let (recorded, config) = (recorded.clone(), config.clone());
                    std::thread::spawn(move || {
                        let _ = serve(stream, &config, &recorded, index);
                        // However it ended (a hang-up, a broken pipe), say so.
                        let mut r = recorded.lock().expect("smtp lock");
                        let commands = &mut r.sessions[index].commands;
                        if commands
                            .last()
                            .is_none_or(|c| c != "QUIT" && c != "(closed)")
                        {
                            commands.push("(closed)".into());
                        }
                    });
                }
            });
        }
        SmtpServer {
            addr,
            recorded,
            stop,
        }
    }

    /// `127.0.0.1`.
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every message accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.recorded.lock().expect("smtp lock").mails.clone()
    }

    /// Every connection so far.
    pub fn sessions(&self) -> Vec<Session> {
        self.recorded.lock().expect("smtp lock").sessions.clone()
    }

    /// Waits (up to `timeout`) until `n` sessions ended with `QUIT` or dropped; returns all.
    pub fn wait_for_sessions(&self, n: usize, timeout: Duration) -> Vec<Session> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.sessions();
            let done = seen
                .iter()
                .filter(|s| {
                    s.commands
                        .last()
                        .is_some_and(|c| c == "QUIT" || c == "(closed)")
                })
                .count();
            if done >= n || Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// The dialogue state of one connection.
#[derive(Default)]
struct Dialogue {
    greeted: bool,
    user: Option<String>,
    from: Option<String>,
    to: Vec<String>,
}

/// Writes a reply (one or more lines) with CRLF line ends.
fn reply(out: &mut TcpStream, lines: &[String]) -> std::io::Result<()> {
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn serve(
    stream: TcpStream,
    config: &SmtpConfig,
    recorded: &Mutex<Recorded>,
    index: usize,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    let record = |f: &dyn Fn(&mut Session)| {
        let mut r = recorded.lock().expect("smtp lock");
        f(&mut r.sessions[index]);
    };
    let fail = |stage: Stage| {
        config
            .failures
            .iter()
            .find(|(s, _, _)| *s == stage)
            .map(|(_, code, text)| format!("{code} {text}"))
    };

    if let Some(refusal) = fail(Stage::Greeting) {
        reply(&mut out, &[refusal])?;
        return Ok(());
    }
    reply(
        &mut out,
        &[format!("220 {SERVER_NAME} ESMTP keywire test server ready")],
    )?;
    let mut state = Dialogue::default();
    loop {
        let Some(line) = read_line(&mut input, MAX_COMMAND_LINE)? else {
            return Ok(());
        };
        let Some(line) = line else {
            reply(&mut out, &["500 5.5.2 Line too long".into()])?;
            continue;
        };
        let (verb, argument) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_owned()),
            None => (line.to_ascii_uppercase(), String::new()),
        };
        record(&|s| s.commands.push(verb.clone()));
        let answer: Vec<String> = match verb.as_str() {
            "EHLO" | "HELO" if argument.is_empty() => {
                vec!["501 5.5.4 Syntax: EHLO hostname".into()]
            }
            "EHLO" => {
                state = Dialogue {
                    greeted: true,
                    ..Dialogue::default()
                };
                let mut lines = vec![
                    format!("250-{SERVER_NAME} greets {argument}"),
                    "250-8BITMIME".into(),
                    "250-SMTPUTF8".into(),
                    format!("250-SIZE {MAX_MESSAGE_BYTES}"),
                ];
                if config.credentials.is_some() {
                    lines.push("250-AUTH PLAIN LOGIN".into());
                }
                lines.push("250 ENHANCEDSTATUSCODES".into());
                lines
            }
            "HELO" => {
                state = Dialogue {
                    greeted: true,
                    ..Dialogue::default()
                };
                vec![format!("250 {SERVER_NAME}")]
            }
            "STARTTLS" => vec!["502 5.5.1 STARTTLS not offered".into()],
            "AUTH" => {
                let outcome = authenticate(&mut input, &mut out, config, &state, &argument)?;
                match outcome {
                    AuthOutcome::Reply(text) => vec![text],
                    AuthOutcome::Checked(user, good) => {
                        if let Some(refusal) = fail(Stage::Auth) {
                            vec![refusal]
                        } else if good {
                            record(&|s| s.authenticated_as = Some(user.clone()));
                            state.user = Some(user);
                            vec!["235 2.7.0 Authentication successful".into()]
                        } else {
                            record(&|s| s.auth_failed = true);
                            vec!["535 5.7.8 Authentication credentials invalid".into()]
                        }
                    }
                }
            }
            "MAIL" => match path_of(&argument, "FROM:") {
                _ if !state.greeted => vec!["503 5.5.1 Send EHLO first".into()],
                _ if config.credentials.is_some() && state.user.is_none() => {
                    vec!["530 5.7.0 Authentication required".into()]
                }
                _ if state.from.is_some() => vec!["503 5.5.1 Nested MAIL command".into()],
                None => vec!["501 5.5.4 Syntax: MAIL FROM:<address>".into()],
                Some(from) => match fail(Stage::MailFrom) {
                    Some(refusal) => vec![refusal],
                    None => {
                        state.from = Some(from);
                        state.to.clear();
                        vec!["250 2.1.0 Sender OK".into()]
                    }
                },
            },
            "RCPT" => match path_of(&argument, "TO:") {
                _ if state.from.is_none() => vec!["503 5.5.1 Need MAIL before RCPT".into()],
                None => vec!["501 5.5.4 Syntax: RCPT TO:<address>".into()],
                Some(to) if to.is_empty() || !to.contains('@') => {
                    vec!["553 5.1.3 Bad recipient address syntax".into()]
                }
                Some(_) if state.to.len() >= MAX_RECIPIENTS => {
                    vec!["452 4.5.3 Too many recipients".into()]
                }
                Some(to) => match fail(Stage::RcptTo) {
                    Some(refusal) => vec![refusal],
                    None => {
                        state.to.push(to);
                        vec!["250 2.1.5 Recipient OK".into()]
                    }
                },
            },
            "DATA" if !argument.is_empty() => vec!["501 5.5.4 DATA takes no argument".into()],
            "DATA" if state.to.is_empty() => vec!["503 5.5.1 Need RCPT before DATA".into()],
            "DATA" => {
                reply(&mut out, &["354 End data with <CR><LF>.<CR><LF>".into()])?;
                let Some(data) = read_data(&mut input)? else {
                    return Ok(());
                };
                let answer = match (data, fail(Stage::Data)) {
                    (Err(why), _) => why,
                    (Ok(_), Some(refusal)) => refusal,
                    (Ok(data), None) => {
                        let mut r = recorded.lock().expect("smtp lock");
                        r.mails.push(Mail {
                            from: state.from.clone().unwrap_or_default(),
                            to: state.to.clone(),
                            data,
                            authenticated_as: state.user.clone(),
                        });
                        format!("250 2.0.0 OK: queued as KW{:04}", r.mails.len())
                    }
                };
                state.from = None;
                state.to.clear();
                vec![answer]
            }
            "RSET" => {
                state.from = None;
                state.to.clear();
                vec!["250 2.0.0 OK".into()]
            }
            "NOOP" => vec!["250 2.0.0 OK".into()],
            "VRFY" => vec!["252 2.1.5 Cannot VRFY user".into()],
            "QUIT" => {
                reply(
                    &mut out,
                    &[format!("221 2.0.0 {SERVER_NAME} closing connection")],
                )?;
                let _ = out.shutdown(Shutdown::Both);
                return Ok(());
            }
            _ => vec!["500 5.5.2 Command not recognized".into()],
        };
        reply(&mut out, &answer)?;
    }
}

enum AuthOutcome {
    /// Answer this and carry on (a syntax error, a cancelled exchange...).
    Reply(String),
    /// The user name presented and whether the credentials were right.
    Checked(String, bool),
}

/// Runs an `AUTH PLAIN` or `AUTH LOGIN` exchange (RFC 4954, RFC 4616).
fn authenticate(
    input: &mut BufReader<TcpStream>,
    out: &mut TcpStream,
    config: &SmtpConfig,
    state: &Dialogue,
    argument: &str,
) -> std::io::Result<AuthOutcome> {
    let Some((user, password)) = &config.credentials else {
        return Ok(AuthOutcome::Reply("502 5.5.1 AUTH not offered".into()));
    };
    if !state.greeted {
        return Ok(AuthOutcome::Reply("503 5.5.1 Send EHLO first".into()));
    }
    if state.user.is_some() {
        return Ok(AuthOutcome::Reply("503 5.5.1 Already authenticated".into()));
    }
    let (mechanism, initial) = match argument.split_once(' ') {
        Some((m, i)) => (m.to_ascii_uppercase(), Some(i.trim().to_owned())),
        None => (argument.to_ascii_uppercase(), None),
    };
    let mut ask = |prompt: &str| -> std::io::Result<Option<String>> {
        reply(out, &[format!("334 {prompt}")])?;
        Ok(read_line(input, MAX_TEXT_LINE)?.flatten())
    };
    let cancelled = || AuthOutcome::Reply("501 5.7.0 Authentication cancelled".into());
    let malformed = || AuthOutcome::Reply("501 5.5.2 Cannot decode the response".into());
    match mechanism.as_str() {
        "PLAIN" => {
            let response = match initial {
                Some(i) => i,
                None => match ask("")? {
                    Some(r) => r,
                    None => return Ok(cancelled()),
                },
            };
            if response == "*" {
                return Ok(cancelled());
            }
            let Some(decoded) = base64_decode(&response) else {
                return Ok(malformed());
            };
            // authzid NUL authcid NUL passwd
            let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
            let [_, got_user, got_password] = parts.as_slice() else {
                return Ok(malformed());
            };
            let got_user = String::from_utf8_lossy(got_user).into_owned();
            let good = got_user == *user && *got_password == password.as_bytes();
            Ok(AuthOutcome::Checked(got_user, good))
        }
        "LOGIN" => {
            let user_line = match initial {
                Some(i) => i,
                None => match ask("VXNlcm5hbWU6")? {
                    Some(r) => r,
                    None => return Ok(cancelled()),
                },
            };
            if user_line == "*" {
                return Ok(cancelled());
            }
            let Some(got_user) = base64_decode(&user_line) else {
                return Ok(malformed());
            };
            let password_line = match ask("UGFzc3dvcmQ6")? {
                Some(r) if r != "*" => r,
                _ => return Ok(cancelled()),
            };
            let Some(got_password) = base64_decode(&password_line) else {
                return Ok(malformed());
            };
            let got_user = String::from_utf8_lossy(&got_user).into_owned();
            let good = got_user == *user && got_password == password.as_bytes();
            Ok(AuthOutcome::Checked(got_user, good))
        }
        _ => Ok(AuthOutcome::Reply(
            "504 5.5.4 Unrecognized authentication type".into(),
        )),
    }
}

/// `<address>` after `FROM:`/`TO:` (case-insensitive), parameters ignored.
fn path_of(argument: &str, prefix: &str) -> Option<String> {
    let head = argument.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = argument[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_owned())
}

/// One CRLF-terminated line: `Ok(None)` at end of stream, `Ok(Some(None))` when longer than
/// `max` octets (the rest of it is skipped), else the line without CRLF.
fn read_line(
    input: &mut BufReader<TcpStream>,
    max: usize,
) -> std::io::Result<Option<Option<String>>> {
    let mut raw = Vec::new();
    let n = input.read_until(b'\n', &mut raw)?;
    if n == 0 {
        return Ok(None);
    }
    if raw.len() > max {
        return Ok(Some(None));
    }
    while raw.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        raw.pop();
    }
    Ok(Some(Some(String::from_utf8_lossy(&raw).into_owned())))
}

/// The message after `354`, up to the `.` line: `Ok(None)` when the client hung up,
/// `Ok(Some(Err(reply)))` when the message breaks a limit (read to its end all the same).
fn read_data(input: &mut BufReader<TcpStream>) -> std::io::Result<Option<Result<String, String>>> {
    let mut data = String::new();
    let mut problem = None;
    loop {
        let mut raw = Vec::new();
        if input.read_until(b'\n', &mut raw)? == 0 {
            return Ok(None);
        }
        if raw.len() > MAX_TEXT_LINE {
            problem.get_or_insert_with(|| {
                "500 5.5.2 Line too long (RFC 5321: 1000 octets)".to_owned()
            });
        }
        if !raw.ends_with(b"\r\n") {
            problem.get_or_insert_with(|| "500 5.5.2 Bare line feed in message".to_owned());
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\r', '\n']);
        if line == "." {
            break;
        }
        let line = line.strip_prefix('.').unwrap_or(line);
        data.push_str(line);
        data.push_str("\r\n");
        if data.len() > MAX_MESSAGE_BYTES {
            problem.get_or_insert_with(|| "552 5.3.4 Message size exceeds fixed limit".to_owned());
        }
    }
    Ok(Some(match problem {
        Some(why) => Err(why),
        None => Ok(data),
    }))
}

/// Standard base64 (RFC 4648, padding optional); `None` when malformed.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_rfc_4648_vectors() {
        for (encoded, plain) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base64_decode("not base64!"), None);
    }

    #[test]
    fn paths_are_read_from_mail_and_rcpt() {
        assert_eq!(
            path_of("FROM:<a@b.example> SIZE=10", "FROM:").as_deref(),
            Some("a@b.example")
        );
        assert_eq!(
            path_of("to: <c@d.example>", "TO:").as_deref(),
            Some("c@d.example")
        );
        assert_eq!(path_of("FROM:a@b.example", "FROM:"), None);
    }
}
