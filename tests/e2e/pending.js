// Scenarios whose server feature is not on main yet (issue 16, built on other branches).
// Each is skipped here with the reason below, so main stays green; `WARD_E2E_PENDING=1`
// runs them anyway as `todo` (failures reported, not fatal). When a feature lands, delete
// its line: the scenario then runs and must pass.
export const PENDING = {
};
