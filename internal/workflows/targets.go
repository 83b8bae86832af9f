package workflows

// ProdGroup is the one concurrency group of every job that changes or loads production: GitHub
// runs one job of a group at a time, so no two deploys of any kind (release, site, infra, AMI)
// overlap, and a load test never runs during one.
const ProdGroup = "zmanim-prod"

// ProdEnvironment is the GitHub environment whose protection rules (required reviewers,
// deployment refs) gate the production roles (infra/github_oidc.go).
const ProdEnvironment = "prod"

// Target is what a workflow job must provide to run one mage target against production.
type Target struct {
	// Env lists the ZOPS_* settings the job must set (at workflow, job or step level). A value
	// may come from a repository variable that is empty on purpose (an optional import such
	// as ZOPS_HOSTED_ZONE_ID): what matters is that the job passes what the operator
	// configured rather than silently running on a built-in default.
	Env []string
	// Exclusive targets change or load production: their job must hold ProdGroup.
	Exclusive bool
}

// Targets is the table of mage targets the workflows may run, with what each needs for prod.
// A workflow that runs a target missing here fails the workflow test: add it with its
// settings. Every name in Env must be an option the target documents (its doc comment in
// magefiles/) or a configuration override (internal/config); a test checks that.
var Targets = map[string]Target{
	// Local targets ci may run against the twin on the runner: no prod settings. ci runs the
	// README's test command through .ci/run; ami:local builds and boots the box root (issue 13).
	"test":        {},
	"ami:local":   {},
	"twin:up":     {},
	"twin:status": {},

	// Finds the box by its Name tag (no instance variable to go stale after an AMI rollout);
	// the version is the tag.
	"release": {Env: []string{"ZOPS_ENV", "ZOPS_REGION", "ZOPS_VERSION"}, Exclusive: true},

	// The site role may invalidate only its distribution and cannot look it up by alias.
	"site:plan": {Env: []string{"ZOPS_ENV", "ZOPS_REGION", "ZOPS_DISTRIBUTION_ID"}},
	"site:sync": {Env: []string{"ZOPS_ENV", "ZOPS_REGION", "ZOPS_DISTRIBUTION_ID"}, Exclusive: true},

	// The stacks must be synthesized with what the operator's first deploy used: the
	// repository the roles trust, the imported zone and OIDC provider, the account.
	"infra:check":  {Env: []string{"ZOPS_ENV", "ZOPS_REGION", "ZOPS_ACCOUNT", "ZOPS_GITHUB_REPO", "ZOPS_HOSTED_ZONE_ID", "ZOPS_GITHUB_OIDC_PROVIDER_ARN"}},
	"infra:diff":   {Env: []string{"ZOPS_ENV", "ZOPS_REGION", "ZOPS_ACCOUNT", "ZOPS_GITHUB_REPO", "ZOPS_HOSTED_ZONE_ID", "ZOPS_GITHUB_OIDC_PROVIDER_ARN"}},
	"infra:deploy": {Env: []string{"ZOPS_ENV", "ZOPS_REGION", "ZOPS_ACCOUNT", "ZOPS_GITHUB_REPO", "ZOPS_HOSTED_ZONE_ID", "ZOPS_GITHUB_OIDC_PROVIDER_ARN", "ZOPS_DEPLOY_APPROVE"}, Exclusive: true},

	// The image is built on EC2 and recorded in the AMI parameter. (Once the target documents
	// how it names the image, add that setting, e.g. ZOPS_VERSION from the tag.)
	"ami":         {Env: []string{"ZOPS_ENV", "ZOPS_REGION"}, Exclusive: true},
	"ami:rollout": {Env: []string{"ZOPS_ENV", "ZOPS_REGION"}, Exclusive: true},

	// From the runner against the production edge (no AWS access); the report directory is
	// what the workflow uploads.
	"loadtest": {Env: []string{"ZOPS_ENV", "ZOPS_LOADTEST_TARGET", "ZOPS_LOADTEST_REPORT_DIR"}, Exclusive: true},
}
