//! What the snapshot test files share: a strict run with the full trace, pinned by insta.

use simulator::check::KnownIssues;
use simulator::trace::TraceMode;
use simulator::{run, Report, RunOptions, Scenario};

/// Runs `scenario` strictly (no known issue tolerated) with the full trace and journal,
/// pins the trace as snapshot `name`, and returns the report for further assertions.
pub fn snapshot(name: &str, scenario: Scenario) -> Report {
    let report = run(
        scenario,
        RunOptions {
            trace: TraceMode::Full,
            stop_at_first: false,
            keep_patch_log: true,
            known: KnownIssues::none(),
        },
    );
    assert!(report.passed(), "{}", report.failure_text(80));
    let mut settings = insta::Settings::clone_current();
    settings.set_omit_expression(true);
    settings.set_prepend_module_to_snapshot(false);
    // Beside the test files, not beside this helper.
    settings.set_snapshot_path("../snapshots");
    settings.bind(|| insta::assert_snapshot!(name, report.trace_text()));
    report
}
