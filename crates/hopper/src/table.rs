//! Plain-text tables for human output: a header, left-aligned columns padded to their widest
//! cell, two spaces between columns, no trailing spaces. Machine output is `--json`, never this.

/// A table under construction.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Columns aligned right (numbers read better that way).
    right: Vec<bool>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<I, S>(header: I) -> Table
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let header: Vec<String> = header.into_iter().map(Into::into).collect();
        let right = vec![false; header.len()];
        Table {
            header,
            rows: Vec::new(),
            right,
        }
    }

    /// Aligns the given columns (0-based) to the right.
    pub fn align_right(mut self, columns: &[usize]) -> Table {
        for &c in columns {
            if let Some(r) = self.right.get_mut(c) {
                *r = true;
            }
        }
        self
    }

    /// Adds a row; missing cells are blank, extra ones are dropped.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut row: Vec<String> = cells.into_iter().map(Into::into).collect();
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate().take(cols) {
                if i > 0 {
                    text.push_str("  ");
                }
                let pad = widths[i] - width(cell);
                if self.right[i] {
                    text.extend(std::iter::repeat_n(' ', pad));
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Display width of a cell, counted in characters (close enough for ids, names and numbers).
fn width(s: &str) -> usize {
    s.chars().count()
}

/// `12345` as `12,345`: benchmark figures and counts are read by people.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Shortens `s` to at most `max` characters, marking the cut with `…`.
pub fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_pad_to_the_widest_cell() {
        let mut t = Table::new(["NAME", "COUNT", "NOTE"]).align_right(&[1]);
        t.row(["default", "3", "ok"]);
        t.row(["emails", "12345", ""]);
        assert_eq!(
            t.render(),
            "NAME     COUNT  NOTE\n\
             default      3  ok\n\
             emails   12345\n"
        );
    }

    #[test]
    fn short_rows_are_padded_and_long_ones_cut() {
        let mut t = Table::new(["A", "B"]);
        t.row(["x"]);
        t.row(["y", "z", "dropped"]);
        assert_eq!(t.render(), "A  B\nx\ny  z\n");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(2_000_000), "2,000,000");
    }

    #[test]
    fn ellipsize_cuts_on_characters() {
        assert_eq!(ellipsize("short", 10), "short");
        assert_eq!(ellipsize("ééééé", 3), "éé…");
    }
}
