//! Device rules: the v1 `devices.allow`/`devices.deny` line format, and what v2 can accept.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// Formats a rule as the v1 devices files take it: `c 1:3 rwm`; absent or negative numbers are `*`.
pub fn format_device_rule(rule: &LinuxDeviceCgroup) -> String {
    let typ = rule.typ().unwrap_or(LinuxDeviceType::A);
    let num = |n: Option<i64>| match n {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".to_string(),
    };
    let access = rule
        .access()
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rwm");
    format!(
        "{} {}:{} {}",
        typ.as_str(),
        num(rule.major()),
        num(rule.minor()),
        access
    )
}

/// Checks that a rule is one the kernel can express: access only from `rwm`, type a, b, or c.
pub(crate) fn validate(rule: &LinuxDeviceCgroup) -> Result<(), String> {
    if let Some(access) = rule.access().as_deref() {
        if let Some(bad) = access.chars().find(|c| !matches!(c, 'r' | 'w' | 'm')) {
            return Err(format!(
                "device rule {:?} has access {access:?}; only r, w and m are allowed (bad {bad:?})",
                format_device_rule(rule)
            ));
        }
    }
    match rule.typ() {
        None | Some(LinuxDeviceType::A | LinuxDeviceType::B | LinuxDeviceType::C) => Ok(()),
        Some(other) => Err(format!(
            "device rule type {:?} cannot be enforced by the devices cgroup (only a, b, c)",
            other.as_str()
        )),
    }
}

fn is_allow_all(rule: &LinuxDeviceCgroup) -> bool {
    let all_access = rule
        .access()
        .as_deref()
        .is_none_or(|a| a.is_empty() || ["r", "w", "m"].iter().all(|c| a.contains(c)));
    rule.allow()
        && matches!(rule.typ(), None | Some(LinuxDeviceType::A))
        && rule.major().is_none_or(|m| m < 0)
        && rule.minor().is_none_or(|m| m < 0)
        && all_access
}

/// Whether a rule list denies anything: false only when the last allow-all rule is preceded and followed by nothing restrictive.
pub(crate) fn restricts_anything(rules: &[LinuxDeviceCgroup]) -> bool {
    // The default is allow-all, so only deny rules restrict — unless a later allow-all undoes them.
    match rules.iter().rposition(is_allow_all) {
        Some(last_allow_all) => rules[last_allow_all + 1..].iter().any(|r| !r.allow()),
        None => rules.iter().any(|r| !r.allow()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn rule(
        allow: bool,
        typ: Option<LinuxDeviceType>,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access(access);
        if let Some(t) = typ {
            b = b.typ(t);
        }
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().expect("rule")
    }

    #[test]
    fn formats_rules_like_the_kernel_wants() {
        assert_eq!(
            format_device_rule(&rule(false, None, None, None, "rwm")),
            "a *:* rwm"
        );
        assert_eq!(
            format_device_rule(&rule(
                true,
                Some(LinuxDeviceType::C),
                Some(1),
                Some(3),
                "rw"
            )),
            "c 1:3 rw"
        );
        assert_eq!(
            format_device_rule(&rule(true, Some(LinuxDeviceType::B), Some(8), Some(-1), "")),
            "b 8:* rwm"
        );
    }

    #[test]
    fn validates_access_and_type() {
        assert!(validate(&rule(true, None, None, None, "rwx")).is_err());
        assert!(validate(&rule(true, Some(LinuxDeviceType::P), None, None, "r")).is_err());
        assert!(validate(&rule(
            true,
            Some(LinuxDeviceType::C),
            Some(1),
            Some(5),
            "rwm"
        ))
        .is_ok());
    }

    #[test]
    fn knows_which_rule_sets_restrict() {
        let deny_all = rule(false, None, None, None, "rwm");
        let allow_all = rule(true, None, None, None, "rwm");
        let null = rule(true, Some(LinuxDeviceType::C), Some(1), Some(3), "rwm");
        assert!(!restricts_anything(&[]));
        assert!(!restricts_anything(std::slice::from_ref(&allow_all)));
        assert!(!restricts_anything(std::slice::from_ref(&null)));
        assert!(restricts_anything(&[deny_all.clone(), null.clone()]));
        assert!(!restricts_anything(&[deny_all.clone(), allow_all.clone()]));
        assert!(restricts_anything(&[allow_all, deny_all]));
    }
}
