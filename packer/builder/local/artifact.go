package local

import "fmt"

// BuilderID identifies artifacts of this builder.
const BuilderID = "zops.local"

// Artifact is a built root directory; its Id is the path.
type Artifact struct {
	Root string
	// StateData carries generated data to post-processors.
	StateData map[string]interface{}
}

func (*Artifact) BuilderId() string               { return BuilderID }
func (a *Artifact) Files() []string               { return nil }
func (a *Artifact) Id() string                    { return a.Root }
func (a *Artifact) String() string                { return fmt.Sprintf("Debian root in %s", a.Root) }
func (a *Artifact) State(name string) interface{} { return a.StateData[name] }

// Destroy removes the root directory.
func (a *Artifact) Destroy() error {
	return removeRoot(a.Root)
}
