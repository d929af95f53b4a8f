//! A minimal tar reader (ustar, GNU and pax headers) and the readers that
//! count and hash what passes through them.

use std::io::{self, Read, Write};

use anyhow::{Context, Result, ensure};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EntryKind {
    File,
    Directory,
    Symlink,
    HardLink,
    Device,
    Fifo,
    Other(u8),
}

#[derive(Clone, Debug)]
pub(super) struct TarEntry {
    pub(super) path: String,
    pub(super) size: u64,
    pub(super) kind: EntryKind,
}

/// Calls `f` for every entry of a ustar/pax/GNU tar with a reader limited to
/// the entry's data (which `f` may leave unread), and stops at the
/// end-of-archive marker (leaving whatever follows it unread).
pub(super) fn walk_tar<R: Read>(
    reader: &mut CountingReader<R>,
    mut f: impl FnMut(&TarEntry, &mut CountingReader<io::Take<&mut CountingReader<R>>>) -> Result<()>,
) -> Result<()> {
    let mut header = [0u8; 512];
    let mut next_path: Option<String> = None;
    let mut next_size: Option<u64> = None;
    loop {
        let at = reader.position();
        reader
            .read_exact(&mut header)
            .with_context(|| format!("truncated tar: no header at byte {at}"))?;
        if header.iter().all(|&b| b == 0) {
            // end of archive: a second zero block follows
            reader
                .read_exact(&mut header)
                .context("truncated end of tar")?;
            ensure!(
                header.iter().all(|&b| b == 0),
                "garbage after a zero block at byte {at}"
            );
            return Ok(());
        }
        verify_checksum(&header).with_context(|| format!("tar header at byte {at}"))?;
        let size = match next_size.take() {
            Some(s) => s,
            None => {
                parse_number(&header[124..136]).with_context(|| format!("size at byte {at}"))?
            }
        };
        let typeflag = header[156];
        let padded = size.div_ceil(512) * 512;
        if matches!(typeflag, b'x' | b'g' | b'L' | b'K') {
            {
                ensure!(size <= 1 << 20, "extended header of {size} bytes");
                let mut data = vec![0u8; padded as usize];
                reader.read_exact(&mut data)?;
                data.truncate(size as usize);
                if typeflag == b'x' {
                    for (key, value) in parse_pax(&data)? {
                        match key.as_str() {
                            "path" => next_path = Some(value),
                            "size" => next_size = Some(value.parse().context("pax size")?),
                            _ => {}
                        }
                    }
                } else if typeflag == b'L' {
                    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                    next_path = Some(String::from_utf8_lossy(&data[..end]).into_owned());
                }
            }
            continue;
        }
        let path = match next_path.take() {
            Some(p) => p,
            None => {
                let name = c_string(&header[0..100]);
                let prefix = if &header[257..262] == b"ustar" {
                    c_string(&header[345..500])
                } else {
                    String::new()
                };
                if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                }
            }
        };
        let kind = match typeflag {
            b'0' | 0 | b'7' => EntryKind::File,
            b'5' => EntryKind::Directory,
            b'2' => EntryKind::Symlink,
            b'1' => EntryKind::HardLink,
            b'3' | b'4' => EntryKind::Device,
            b'6' => EntryKind::Fifo,
            other => EntryKind::Other(other),
        };
        // Only regular files carry data (a hard link's size is 0 in practice).
        let data_size = if kind == EntryKind::File { size } else { 0 };
        let entry = TarEntry {
            path,
            size: data_size,
            kind,
        };
        let start = reader.position();
        {
            let mut data = CountingReader::at((&mut *reader).take(data_size), start);
            f(&entry, &mut data)?;
            io::copy(&mut data, &mut io::sink())?;
        }
        let pad = data_size.div_ceil(512) * 512 - data_size;
        io::copy(&mut (&mut *reader).take(pad), &mut io::sink())?;
        ensure!(
            reader.position() == start + data_size + pad,
            "truncated tar entry {}",
            entry.path
        );
    }
}

fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

fn parse_number(field: &[u8]) -> Result<u64> {
    if field[0] & 0x80 != 0 {
        // GNU base-256
        ensure!(field[0] == 0x80, "negative or huge base-256 number");
        return Ok(field[1..]
            .iter()
            .fold(0u64, |n, &b| (n << 8) | u64::from(b)));
    }
    let text = c_string(field);
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).with_context(|| format!("bad octal {text:?}"))
}

fn verify_checksum(header: &[u8; 512]) -> Result<()> {
    let stored = parse_number(&header[148..156])?;
    let sum: u64 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    ensure!(sum == stored, "checksum {stored} != {sum}");
    Ok(())
}

/// Records of a pax extended header: `"<len> <key>=<value>\n"`.
fn parse_pax(mut data: &[u8]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .context("pax record without length")?;
        let len: usize = std::str::from_utf8(&data[..space])?
            .parse()
            .context("pax record length")?;
        ensure!(
            len > space + 1 && len <= data.len(),
            "bad pax record length {len}"
        );
        let record = &data[space + 1..len];
        let record = record
            .strip_suffix(b"\n")
            .context("pax record without newline")?;
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .context("pax record without '='")?;
        out.push((
            String::from_utf8_lossy(&record[..eq]).into_owned(),
            String::from_utf8_lossy(&record[eq + 1..]).into_owned(),
        ));
        data = &data[len..];
    }
    Ok(out)
}

/// A reader that counts the bytes read through it.
pub(super) struct CountingReader<R> {
    inner: R,
    position: u64,
}

impl<R> CountingReader<R> {
    pub(super) fn new(inner: R) -> Self {
        Self::at(inner, 0)
    }
    pub(super) fn at(inner: R, position: u64) -> Self {
        Self { inner, position }
    }
    pub(super) fn position(&self) -> u64 {
        self.position
    }
    pub(super) fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.position += n as u64;
        Ok(n)
    }
}

/// A reader that hashes (SHA-256) everything read through it.
pub(super) struct HashingReader<R> {
    inner: R,
    hasher: Sha256Writer,
}

impl<R> HashingReader<R> {
    pub(super) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256Writer::default(),
        }
    }
    pub(super) fn finish(self) -> String {
        self.hasher.finish()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.0.update(&buf[..n]);
        Ok(n)
    }
}

/// SHA-256 as an `io::Write` sink.
pub(super) struct Sha256Writer(ring::digest::Context);

impl Default for Sha256Writer {
    fn default() -> Self {
        Self(ring::digest::Context::new(&ring::digest::SHA256))
    }
}

impl Sha256Writer {
    /// Lower-case hex digest.
    pub(super) fn finish(self) -> String {
        let mut hex = String::with_capacity(64);
        for b in self.0.finish().as_ref() {
            use std::fmt::Write as _;
            let _ = write!(hex, "{b:02x}");
        }
        hex
    }
}

impl Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn run(cmd: &mut Command) {
        let status = cmd.status().unwrap();
        assert!(status.success(), "{cmd:?}: {status}");
    }

    #[test]
    fn tar_reader_reads_gnu_tar_pax_archives() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let long = "d".repeat(120);
        std::fs::create_dir_all(src.join(&long)).unwrap();
        std::fs::write(src.join(&long).join("f"), vec![7u8; 1000]).unwrap();
        std::fs::write(src.join("empty"), b"").unwrap();
        std::os::unix::fs::symlink("empty", src.join("link")).unwrap();
        let tar = dir.path().join("t.tar");
        run(Command::new("tar")
            .args(["--format=posix", "--sort=name", "-C"])
            .arg(&src)
            .arg("-cf")
            .arg(&tar)
            .args([long.as_str(), "empty", "link"]));
        let bytes = std::fs::read(&tar).unwrap();
        let mut reader = CountingReader::new(&bytes[..]);
        let mut seen = Vec::new();
        walk_tar(&mut reader, |e, data| {
            let mut buf = Vec::new();
            data.read_to_end(&mut buf)?;
            seen.push((e.path.clone(), e.kind, buf.len() as u64, e.size));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (format!("{long}/"), EntryKind::Directory, 0, 0),
                (format!("{long}/f"), EntryKind::File, 1000, 1000),
                ("empty".to_owned(), EntryKind::File, 0, 0),
                ("link".to_owned(), EntryKind::Symlink, 0, 0),
            ]
        );
        // Truncated archives are errors, not silent ends.
        let mut short = CountingReader::new(&bytes[..1024]);
        assert!(walk_tar(&mut short, |_, _| Ok(())).is_err());
    }
}
