//! Go templates of the catalog (`pvc_name_template`) checked at load with the Go-template engine
//! Forklift's subset is modelled by (`mtv_api::template`): a syntax error, an unknown function or an
//! unknown field is found here, with the file position of the offending character, instead of as
//! a Plan that Forklift judges invalid minutes into a run.

use mtv_api::{Template, TemplateData, TemplateError};

/// A template that cannot work, and where in the catalog file the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateProblem {
    /// Byte offset in the file of the character the engine stopped at (the value's start when
    /// the engine gives no column).
    pub offset: usize,
    pub message: String,
}

/// Parses `template` (whose YAML scalar starts at byte `value_offset` of `file_text`) and renders
/// it once against sample PVC data, as Forklift's plan validation renders it against each VM.
pub(crate) fn check_pvc_template(
    file_text: &str,
    value_offset: usize,
    template: &str,
) -> Result<(), TemplateProblem> {
    let problem = |error: TemplateError| TemplateProblem {
        offset: error.column().map_or(value_offset, |column| {
            file_offset_of_column(file_text, value_offset, column)
        }),
        message: error.message().to_string(),
    };
    let parsed = Template::parse(template).map_err(problem)?;
    parsed.render(&sample_pvc_data()).map_err(problem)?;
    Ok(())
}

/// Plausible PVC template data: a vSphere VM's first disk.
fn sample_pvc_data() -> TemplateData {
    let data = TemplateData::pvc();
    let fields: [(&str, mtv_api::template::Value); 6] = [
        ("VmName", "mtv-rhel8-sample".into()),
        ("TargetVmName", "mtv-rhel8-sample".into()),
        ("PlanName", "sample-plan".into()),
        ("VmId", "vm-1001".into()),
        (
            "FileName",
            "[datastore1] mtv-rhel8-sample/mtv-rhel8-sample.vmdk".into(),
        ),
        ("DiskIndex", 0i64.into()),
    ];
    fields.into_iter().fold(data, |data, (name, value)| {
        // Every name above is a field of PVCNameTemplateData; keep the data if one ever is not.
        data.clone().set(name, value).unwrap_or(data)
    })
}

/// The byte offset in `file_text` of the template's 1-based character `column`, for a YAML scalar
/// starting at `value_offset`: past an opening quote, counting `''` (single-quoted) and `\x`
/// (double-quoted) as the one character they stand for.
pub(crate) fn file_offset_of_column(file_text: &str, value_offset: usize, column: usize) -> usize {
    let Some(rest) = file_text.get(value_offset..) else {
        return file_text.len();
    };
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"');
    let mut chars = rest
        .char_indices()
        .skip(usize::from(quote.is_some()))
        .peekable();
    let mut remaining = column.saturating_sub(1);
    while let Some((index, c)) = chars.next() {
        if remaining == 0 {
            return value_offset + index;
        }
        match (quote, c) {
            (Some('\''), '\'') if chars.peek().is_some_and(|(_, n)| *n == '\'') => {
                chars.next();
            }
            (Some('"'), '\\') => {
                chars.next();
            }
            _ => {}
        }
        remaining -= 1;
    }
    file_text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syntax_error_points_at_its_character_in_the_file() {
        let text = "    pvc_name_template: '{{ .VmName }-{{.DiskIndex}}'\n";
        let value = text.find('\'').unwrap();
        let template = "{{ .VmName }-{{.DiskIndex}}";
        let problem = check_pvc_template(text, value, template).unwrap_err();
        assert!(
            problem.offset > value && problem.offset < text.len(),
            "{problem:?}"
        );
        assert!(!problem.message.is_empty());
    }

    #[test]
    fn unknown_fields_and_functions_are_problems_valid_templates_are_not() {
        for bad in [
            "{{.VmNmae}}",
            "{{ .VmName | nosuchfn }}",
            "{{ if .VmName }}x",
        ] {
            assert!(check_pvc_template(bad, 0, bad).is_err(), "{bad}");
        }
        for good in [
            "{{.VmName}}-disk-{{.DiskIndex}}",
            r#"{{ .VmName | trunc 32 | trimSuffix "-" }}-{{ .VmName | trunc -4 }}-disk-{{.DiskIndex}}"#,
            "plain-{{.PlanName}}",
        ] {
            assert_eq!(check_pvc_template(good, 0, good), Ok(()), "{good}");
        }
    }

    #[test]
    fn columns_map_through_quotes_and_escapes() {
        let single = "k: 'it''s {{x'";
        let value = single.find('\'').unwrap();
        // Template `it's {{x`: character 6 is the first `{`.
        assert_eq!(&single[file_offset_of_column(single, value, 6)..], "{{x'");
        let double = r#"k: "a\"b{{x""#;
        let value = double.find('"').unwrap();
        assert_eq!(&double[file_offset_of_column(double, value, 4)..], "{{x\"");
        let plain = "k: ab{{x";
        assert_eq!(&plain[file_offset_of_column(plain, 3, 3)..], "{{x");
    }
}
