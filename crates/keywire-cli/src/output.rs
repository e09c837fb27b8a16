//! What the client prints: tables that fit the terminal, JSON, colours on a terminal only, a
//! spinner on a terminal only.
//!
//! Everything that came from the server is passed through [`clean`] before a person sees it,
//! so a name or an excerpt cannot move the cursor or change colours.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::cli::Format;

/// A colour or weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Bold,
    Dim,
    Red,
    Green,
    Yellow,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Plain => "",
            Style::Bold => "\x1b[1m",
            Style::Dim => "\x1b[2m",
            Style::Red => "\x1b[31m",
            Style::Green => "\x1b[32m",
            Style::Yellow => "\x1b[33m",
        }
    }

    /// The style of a run or check status.
    pub(crate) fn of_status(status: &str) -> Style {
        match status {
            "succeeded" | "passed" | "yes" | "create" | "delivered" => Style::Green,
            "failed" | "no" | "delete" => Style::Red,
            "pending" | "running" | "update" | "skipped" => Style::Yellow,
            _ => Style::Plain,
        }
    }
}

/// Whether colours go to a stream: a terminal, `NO_COLOR` unset (or empty), `TERM` not `dumb`.
pub(crate) fn colours_for(is_terminal: bool) -> bool {
    is_terminal
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && !matches!(std::env::var("TERM").as_deref(), Ok("dumb"))
}

/// `text` in `style` when standard error takes colours.
pub(crate) fn paint_stderr(text: &str, style: Style) -> String {
    paint(text, style, colours_for(std::io::stderr().is_terminal()))
}

fn paint(text: &str, style: Style, colour: bool) -> String {
    if !colour || style == Style::Plain {
        text.to_owned()
    } else {
        format!("{}{text}\x1b[0m", style.code())
    }
}

/// A string from the server made safe for a terminal: line breaks and tabs become spaces,
/// other control characters `?`.
pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// Whether standard input is a terminal (prompts are allowed).
pub(crate) fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Writes to standard output, ignoring a closed pipe (`keywire ... | head`).
pub(crate) fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A table: a header and rows of cells with styles.
pub(crate) struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<(String, Style)>>,
}

impl Table {
    pub(crate) fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row of plain cells.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.styled(cells.into_iter().map(|c| (c, Style::Plain)).collect());
    }

    /// Adds a row of styled cells.
    pub(crate) fn styled(&mut self, cells: Vec<(String, Style)>) {
        self.rows
            .push(cells.into_iter().map(|(c, s)| (clean(&c), s)).collect());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines, each at most `width` characters when a width is given.
    pub(crate) fn render(&self, width: Option<usize>, colour: bool) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, (cell, _)) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        if let Some(limit) = width {
            fit(&mut widths, &self.headers, limit);
        }
        let mut out = String::new();
        let header: Vec<(String, Style)> = self
            .headers
            .iter()
            .map(|h| (h.clone(), Style::Bold))
            .collect();
        for row in std::iter::once(&header).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                let (cell, style) = row
                    .get(i)
                    .map_or(("", Style::Plain), |(c, s)| (c.as_str(), *s));
                let cell = truncate(cell, *w);
                let pad = w - cell.chars().count();
                line.push_str(&paint(&cell, style, colour));
                if i + 1 < columns {
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Shrinks the widest columns until the row fits `limit` (two spaces between columns); no
/// column goes below its header or 6 characters.
fn fit(widths: &mut [usize], headers: &[String], limit: usize) {
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    while total(widths) > limit {
        let Some((i, _)) = widths
            .iter()
            .enumerate()
            .filter(|(i, w)| **w > headers[*i].chars().count().max(6))
            .max_by_key(|(_, w)| **w)
        else {
            return;
        };
        widths[i] -= 1;
    }
}

/// `text` cut to `width` characters, with `…` when cut.
pub(crate) fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// Where and how a command prints.
pub(crate) struct Out {
    /// `--output`.
    pub(crate) format: Format,
    colour: bool,
    width: Option<usize>,
}

impl Out {
    pub(crate) fn new(format: Format) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|w| *w > 0)
            .or_else(|| {
                terminal
                    .then(|| terminal_size::terminal_size_of(std::io::stdout()))
                    .flatten()
                    .map(|(w, _)| usize::from(w.0))
            });
        Out {
            format,
            colour: colours_for(terminal),
            width,
        }
    }

    /// Whether `--output json` was asked for.
    pub(crate) fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// Prints a JSON value (pretty, one document).
    pub(crate) fn value(&self, value: &Value) {
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
        print(&format!("{text}\n"));
    }

    /// Prints a table, or `empty` when it has no rows.
    pub(crate) fn table(&self, table: &Table, empty: &str) {
        if table.is_empty() {
            eprintln!("{empty}");
        } else {
            print(&table.render(self.width, self.colour));
        }
    }

    /// Prints `label  value` lines, labels aligned; values cut to the terminal's width.
    pub(crate) fn fields(&self, pairs: &[(&str, String)]) {
        let label = pairs
            .iter()
            .map(|(l, _)| l.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (l, v) in pairs {
            let v = clean(v);
            let v = match self.width {
                Some(w) => truncate(&v, w.saturating_sub(label + 2).max(10)),
                None => v,
            };
            let pad = " ".repeat(label - l.chars().count() + 2);
            out.push_str(&format!("{}{pad}{v}\n", paint(l, Style::Bold, self.colour)));
        }
        print(&out);
    }

    /// Prints one line (cleaned).
    pub(crate) fn line(&self, text: &str) {
        print(&format!("{}\n", clean(text)));
    }

    /// Prints a heading line.
    pub(crate) fn heading(&self, text: &str) {
        print(&format!("\n{}\n", paint(text, Style::Bold, self.colour)));
    }

    /// `text` in `style` when standard output takes colours.
    pub(crate) fn paint(&self, text: &str, style: Style) -> String {
        paint(&clean(text), style, self.colour)
    }
}

/// A spinner on standard error while something slow happens, only on a terminal. Off a
/// terminal, `lines` makes each new message a line of its own (progress for logs).
pub(crate) struct Spinner {
    message: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    lines: bool,
}

impl Spinner {
    pub(crate) fn start(message: &str, lines: bool) -> Spinner {
        let message = Arc::new(Mutex::new(clean(message)));
        let stop = Arc::new(AtomicBool::new(false));
        let terminal = std::io::stderr().is_terminal();
        let thread = terminal.then(|| {
            let (message, stop) = (message.clone(), stop.clone());
            std::thread::spawn(move || {
                const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let text = message.lock().map(|m| m.clone()).unwrap_or_default();
                    eprint!("\r\x1b[2K{} {text}", FRAMES[i % FRAMES.len()]);
                    i += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                eprint!("\r\x1b[2K");
            })
        });
        if !terminal && lines {
            eprintln!("{}", message.lock().map(|m| m.clone()).unwrap_or_default());
        }
        Spinner {
            message,
            stop,
            thread,
            lines: lines && !terminal,
        }
    }

    /// Changes the message.
    pub(crate) fn set(&self, text: &str) {
        let text = clean(text);
        if let Ok(mut m) = self.message.lock() {
            if *m == text {
                return;
            }
            if self.lines {
                eprintln!("{text}");
            }
            *m = text;
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&["KEY", "DESCRIPTION"]);
        t.row(vec![
            "DATABASE_URL".into(),
            "the primary database of the shop, in every environment".into(),
        ]);
        t.row(vec!["X".into(), "short\nline".into()]);
        t
    }

    #[test]
    fn tables_align_and_fit_the_width() {
        let wide = sample().render(None, false);
        let lines: Vec<&str> = wide.lines().collect();
        assert_eq!(lines[0], "KEY           DESCRIPTION");
        assert!(lines[1].starts_with("DATABASE_URL  the primary"));
        assert_eq!(lines[2], "X             short line");
        let narrow = sample().render(Some(40), false);
        for line in narrow.lines() {
            assert!(line.chars().count() <= 40, "{line:?}");
        }
        assert!(
            narrow.contains("DATABASE_URL  the primary database of t…\n"),
            "{narrow}"
        );
        // Colours only when asked; the header is bold.
        assert!(sample().render(None, true).starts_with("\x1b[1mKEY"));
        assert!(!wide.contains('\x1b'));
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(clean("a\x1b[2Jb\tc"), "a?[2Jb c");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
