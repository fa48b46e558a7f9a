//! "Did you mean" hints for mistyped names.

/// The closest candidate to `input`, if it is close enough to be a plausible typo.
pub(crate) fn did_you_mean<'a, I>(input: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let lowered = input.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    // Two equally close candidates make a guess misleading.
    let mut tied = false;
    for candidate in candidates {
        if candidate == input {
            continue;
        }
        let distance = if candidate.to_ascii_lowercase() == lowered {
            0
        } else {
            edit_distance(&lowered, &candidate.to_ascii_lowercase())
        };
        // A third of the length, at least 2, keeps "vsphere8" → "vsphere" but not "ova" → "ovirt".
        let limit = (candidate.chars().count().max(input.chars().count()) / 3).max(2);
        if distance > limit {
            continue;
        }
        match best {
            Some((d, _)) if distance == d => tied = true,
            Some((d, _)) if distance > d => {}
            _ => {
                best = Some((distance, candidate));
                tied = false;
            }
        }
    }
    if tied {
        return None;
    }
    best.map(|(_, c)| c.to_string())
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// " (did you mean `x`?)" or nothing.
pub(crate) fn hint_suffix(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["vsphere", "vsphere-copy-offload", "ovirt", "ova"];
        assert_eq!(did_you_mean("vsphre", names), Some("vsphere".into()));
        assert_eq!(did_you_mean("OVIRT", names), Some("ovirt".into()));
        assert_eq!(did_you_mean("kubevirt-xyz", names), None);
        assert_eq!(did_you_mean("vsphere", ["vsphere-7", "vsphere-8"]), None);
        assert_eq!(
            did_you_mean("pureflasharray", ["pureFlashArray", "ontap"]),
            Some("pureFlashArray".into())
        );
    }
}
