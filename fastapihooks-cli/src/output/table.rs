//! Tables for people: a header row, columns padded to their widest cell, and colour on cells
//! that carry one, only when asked (see [`colour_enabled`]).

use std::io::{IsTerminal as _, Write};

/// A cell's colour on a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    /// Success.
    Green,
    /// Waiting.
    Yellow,
    /// Failure.
    Red,
}

impl Colour {
    fn code(self) -> &'static str {
        match self {
            Self::Green => "32",
            Self::Yellow => "33",
            Self::Red => "31",
        }
    }
}

/// Whether tables are coloured: only when stdout is a terminal and `NO_COLOR` is not set (to
/// anything but the empty string, see <https://no-color.org>).
pub fn colour_enabled() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

/// One cell: its text and, optionally, its colour.
#[derive(Clone, Debug)]
pub struct Cell {
    text: String,
    colour: Option<Colour>,
}

impl Cell {
    /// A cell in `colour`, when colour is on.
    pub fn coloured(text: impl Into<String>, colour: Colour) -> Self {
        Self {
            text: text.into(),
            colour: Some(colour),
        }
    }

    /// The text, in its colour if `colour` (for cells printed outside a table).
    pub fn render(&self, colour: bool) -> String {
        match self.colour.filter(|_| colour) {
            Some(c) => format!("\x1b[{}m{}\x1b[0m", c.code(), self.text),
            None => self.text.clone(),
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self { text, colour: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        text.to_owned().into()
    }
}

/// A table: a header and rows of as many cells.
#[derive(Debug)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table with these column titles.
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as the header has columns).
    pub fn row(&mut self, cells: Vec<Cell>) {
        debug_assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }

    /// Writes the table; cells are coloured only if `colour`.
    pub fn write(&self, out: &mut dyn Write, colour: bool) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.text.chars().count());
            }
        }
        let header: Vec<Cell> = self.header.iter().map(|&h| Cell::from(h)).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            let last = row.len().saturating_sub(1);
            for (i, (cell, &width)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(&cell.render(colour));
                if i < last {
                    let pad = width - cell.text.chars().count();
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `text` on one line (line breaks as spaces), cut to `max` characters with `…`.
pub fn excerpt(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(table: &Table, colour: bool) -> String {
        let mut out = Vec::new();
        table.write(&mut out, colour).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn columns_are_padded_and_colour_only_when_asked() {
        let mut table = Table::new(&["ID", "STATUS", "N"]);
        table.row(vec![
            "a".into(),
            Cell::coloured("dead", Colour::Red),
            "1".into(),
        ]);
        table.row(vec!["bbbb".into(), "ok".into(), "".into()]);
        assert_eq!(
            render(&table, false),
            "ID    STATUS  N\na     dead    1\nbbbb  ok\n"
        );
        assert!(render(&table, true).contains("\x1b[31mdead\x1b[0m    1"));
    }

    #[test]
    fn excerpts_are_one_line_and_cut() {
        assert_eq!(excerpt("a\nb", 10), "a b");
        assert_eq!(excerpt("abcdef", 4), "abc…");
    }
}
