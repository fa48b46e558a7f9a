/// A test id split the way pytest's JUnit writer splits a node id of a parametrised class.
///
/// `TestSanityColdMtvMigration[rhel8]::test_create_storagemap` gives the class
/// `TestSanityColdMtvMigration` (JUnit `classname`) and `test_create_storagemap[rhel8]` (JUnit
/// `name`), so each case reads like pytest's and the parameter stays visible in the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestName {
    pub class: String,
    pub name: String,
}

impl TestName {
    pub fn new(scenario: &str, step: &str) -> Self {
        let (class, param) = split_scenario(scenario);
        let name = match param {
            Some(param) => format!("{step}[{param}]"),
            None => step.to_string(),
        };
        Self {
            class: class.to_string(),
            name,
        }
    }
}

/// `Class[param]` → (`Class`, Some(`param`)); anything else is all class.
pub(crate) fn split_scenario(scenario: &str) -> (&str, Option<&str>) {
    if let Some(open) = scenario.find('[')
        && let Some(param) = scenario[open + 1..].strip_suffix(']')
    {
        return (&scenario[..open], Some(param));
    }
    (scenario, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parametrised_scenario_moves_the_parameter_to_the_name() {
        let name = TestName::new("TestSanityColdMtvMigration[rhel8]", "test_create_plan");
        assert_eq!(name.class, "TestSanityColdMtvMigration");
        assert_eq!(name.name, "test_create_plan[rhel8]");
    }

    #[test]
    fn plain_scenario_keeps_the_step_as_name() {
        let name = TestName::new("TestCopyoffload", "test_migrate_vms");
        assert_eq!(name.class, "TestCopyoffload");
        assert_eq!(name.name, "test_migrate_vms");
        let odd = TestName::new("TestOdd[unclosed", "step");
        assert_eq!(odd.class, "TestOdd[unclosed");
    }
}
