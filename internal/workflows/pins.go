package workflows

// Pins are the action commits the workflows may use, each with the release tag it was published
// as. A workflow must write `uses: <action>@<sha> # <tag>` with a pair from this table: a tag or
// branch can be moved to other code after review, a commit cannot. Every pair here was checked
// against several public workflows and pin tables that agree on it (there is no GitHub access
// from this machine to ask the action's repository). To update an action, resolve the new tag
// (`git ls-remote https://github.com/<action> refs/tags/<tag>`) and change this table and the
// workflows together.
var Pins = map[string]map[string]string{
	"actions/checkout":                      {"08c6903cd8c0fde910a37f88322edcfb5dd907a8": "v5.0.0"},
	"actions/setup-go":                      {"44694675825211faa026b3c33043df3e48a5fa00": "v6.0.0"},
	"actions/setup-node":                    {"2028fbc5c25fe9cf00d9f06a71cc4710d4507903": "v6.0.0"},
	"actions/cache":                         {"0057852bfaa89a56745cba8c7296529d2fc39830": "v4.3.0"},
	"actions/cache/restore":                 {"0057852bfaa89a56745cba8c7296529d2fc39830": "v4.3.0"},
	"actions/upload-artifact":               {"330a01c490aca151604b8cf639adc76d48f6c5d4": "v5.0.0"},
	"aws-actions/configure-aws-credentials": {"a03048d87541d1d9fcf2ecf528a4a65ba9bd7838": "v5.0.0"},
}
