//! Tab-separated cells aligned into columns as Go's `text/tabwriter` does with docker's settings
//! (minimum width 10, padding 3, spaces): a column is as wide as its widest cell plus three, and
//! the text after a line's last tab is not padded.

/// Aligns `text` (lines of tab-separated cells) the way docker's tables come out.
pub fn align(text: &str) -> String {
    align_with(text, 10, 3)
}

/// Aligns with a given minimum cell width and padding (docker's `version` uses 20 and 1).
pub fn align_with(text: &str, min_width: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text
        .split_terminator('\n')
        .map(|l| l.split('\t').collect())
        .collect();
    let mut out = String::new();
    // Go's tabwriter sizes each column over the block of consecutive lines that have a cell in
    // it; docker's rows all have the same cells, so one width per column index per block.
    let mut start = 0;
    while start < lines.len() {
        let mut widths: Vec<usize> = Vec::new();
        let cells = lines[start].len();
        let mut end = start;
        while end < lines.len() && lines[end].len() == cells {
            end += 1;
        }
        for line in &lines[start..end] {
            for (i, cell) in line.iter().enumerate().take(line.len().saturating_sub(1)) {
                let w = (cell.chars().count() + padding).max(min_width);
                if widths.len() <= i {
                    widths.push(w);
                } else if widths[i] < w {
                    widths[i] = w;
                }
            }
        }
        for line in &lines[start..end] {
            let last = line.len().saturating_sub(1);
            for (i, cell) in line.iter().enumerate() {
                out.push_str(cell);
                if i < last {
                    let pad = widths[i] - cell.chars().count();
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_padded_by_three_with_a_minimum_of_ten() {
        let t = super::align("CONTAINER ID\tNAMES\nabc\tx\n");
        assert_eq!(t, "CONTAINER ID   NAMES\nabc            x\n");
        let t = super::align("A\tB\n");
        assert_eq!(t, "A         B\n");
    }
}
