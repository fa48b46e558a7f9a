//! The Hook controller (forklift-api.md §1.6) and what a hook's playbook or image asks of its Job (§5.2).

use std::time::Duration;

use base64::Engine;
use regex::Regex;
use serde_json::{Value, json};

use super::conditions::{CRITICAL, Condition, Conditions, REQUIRED};
use super::{Controller, generation, text_at};
use crate::registry;

/// The Docker reference grammar, loosely: `[registry[:port]/]path[:tag][@digest]`, lowercase path.
fn image_valid(image: &str) -> bool {
    Regex::new(
        r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$",
    )
    .is_ok_and(|r| r.is_match(image))
}

/// The decoded playbook of a Hook, if any (and valid base64).
pub(crate) fn playbook(hook: &Value) -> Option<String> {
    let text = text_at(hook, "/spec/playbook");
    if text.is_empty() {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// What running the hook does: `Ok(log)` or `Err((log, fail message))`. A task using the `fail` module
/// fails with its `msg`; an image whose name contains `fail` fails too.
pub(crate) fn hook_outcome(hook: &Value) -> Result<String, (String, String)> {
    let image = text_at(hook, "/spec/image");
    let mut log =
        String::from("PLAY [localhost] ***\n\nTASK [Gathering Facts] ***\nok: [localhost]\n");
    let image_name = image.rsplit('/').next().unwrap_or(image);
    if image_name.contains("fail") {
        log.push_str(
            "fatal: [localhost]: FAILED! => {\"msg\": \"hook image exited with status 1\"}\n",
        );
        return Err((log, "hook image exited with status 1".into()));
    }
    if let Some(book) = playbook(hook) {
        let lines: Vec<&str> = book.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let playbook_line = line.trim_start().trim_start_matches("- ").trim();
            if let Some(task) = playbook_line.strip_prefix("name:") {
                log.push_str(&format!("\nTASK [{}] ***\n", task.trim()));
            }
            let module = ["ansible.builtin.fail:", "fail:"]
                .iter()
                .find(|m| playbook_line.starts_with(**m))
                .copied();
            if let Some(m) = module {
                let inline = playbook_line[m.len()..].trim();
                let mut msg = String::new();
                if let Some(rest) = inline.strip_prefix("msg=") {
                    msg = rest.trim_matches(['"', '\'']).to_string();
                } else if let Some(rest) = inline.strip_prefix('{') {
                    msg = rest
                        .split("msg:")
                        .nth(1)
                        .map(|m| {
                            m.trim()
                                .trim_end_matches('}')
                                .trim()
                                .trim_matches(['"', '\''])
                                .to_string()
                        })
                        .unwrap_or_default();
                } else {
                    for next in &lines[i + 1..] {
                        let n = next.trim();
                        if let Some(rest) = n.strip_prefix("msg:") {
                            msg = rest.trim().trim_matches(['"', '\'']).to_string();
                            break;
                        }
                        if n.starts_with("- ") {
                            break;
                        }
                    }
                }
                if msg.is_empty() {
                    msg = "Failed as requested from task".into();
                }
                log.push_str(&format!(
                    "fatal: [localhost]: FAILED! => {{\"changed\": false, \"msg\": \"{msg}\"}}\n"
                ));
                return Err((log, msg));
            }
            if playbook_line.starts_with("name:") {
                log.push_str("ok: [localhost]\n");
            }
        }
    }
    log.push_str("\nPLAY RECAP ***\nlocalhost : ok=1 changed=0 unreachable=0 failed=0\n");
    Ok(log)
}

impl Controller {
    pub(crate) fn reconcile_hook(&mut self, hook: &Value) -> Option<Duration> {
        let mut conds = Conditions::default();
        let image = text_at(hook, "/spec/image");
        let aap = hook.pointer("/spec/aap").filter(|a| !a.is_null());
        if let Some(aap) = aap {
            let id = aap
                .get("jobTemplateId")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if !image.is_empty()
                || !text_at(hook, "/spec/playbook").is_empty()
                || id <= 0
                || text_at(aap, "/url").is_empty() && self.setting("aap_url").is_none()
            {
                conds.set(Condition::new(
                    "InvalidHookExecute",
                    CRITICAL,
                    "NotSet",
                    "Hook execution settings are not valid.",
                ));
            }
        } else if image.is_empty() {
            conds.set(Condition::new(
                "InvalidHookExecute",
                CRITICAL,
                "NotSet",
                "Hook execution settings are not valid.",
            ));
        } else if !image_valid(image) {
            conds.set(Condition::new(
                "InvalidImage",
                CRITICAL,
                "NotSet",
                "Hook image is not valid.",
            ));
        }
        if !text_at(hook, "/spec/playbook").is_empty() && playbook(hook).is_none() {
            conds.set(Condition::new(
                "InvalidPlaybook",
                CRITICAL,
                "DataError",
                "Hook playbook is not valid base64.",
            ));
        }
        if !conds.has_blocker() {
            conds.set(Condition::new("Ready", REQUIRED, "", "The hook is ready."));
        }
        let old = hook.get("status");
        let status = json!({
            "conditions": conds.to_json(old.and_then(|o| o.get("conditions"))),
            "observedGeneration": generation(hook),
        });
        self.write_status(&registry::HOOK, hook, status);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(image: &str, book: &str) -> Value {
        json!({"spec": {"image": image, "playbook": base64::engine::general_purpose::STANDARD.encode(book)}})
    }

    #[test]
    fn fail_module_fails_with_its_message() {
        let book = "- hosts: localhost\n  tasks:\n  - name: stop\n    ansible.builtin.fail:\n      msg: \"pre-hook refused\"\n";
        let err = hook_outcome(&hook("quay.io/konveyor/hook-runner", book)).unwrap_err();
        assert_eq!(err.1, "pre-hook refused");
        let ok = "- hosts: localhost\n  tasks:\n  - name: hi\n    debug:\n      msg: hello\n";
        assert!(hook_outcome(&hook("quay.io/konveyor/hook-runner", ok)).is_ok());
        assert!(hook_outcome(&hook("quay.io/lab/hook-fail:latest", "")).is_err());
        assert!(image_valid("quay.io/konveyor/hook-runner:latest"));
        assert!(!image_valid("Not An Image"));
    }
}
