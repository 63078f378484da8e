//! On-disk records.

#[cfg(test)]
mod golden;
