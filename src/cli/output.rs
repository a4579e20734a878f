//! How listings are printed: an aligned text table for people, one JSON array for scripts.

use serde::Serialize;

/// Prints `rows` as one JSON array on stdout.
pub fn json<T: Serialize>(rows: &[T]) -> Result<(), super::Failure> {
    let text = serde_json::to_string_pretty(rows)
        .map_err(|e| super::Failure::new(format!("cannot encode JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Prints a table with a header row; columns are padded to their widest cell (counted in chars).
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.zip(&widths).enumerate() {
            if i + 1 == widths.len() {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
            }
        }
        println!("{}", text.trim_end());
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}
