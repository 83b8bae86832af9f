package workflows

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// MageTargets returns the targets `go tool mage -l` would list for the magefiles in dir, plus
// the aliases (mage runs them but does not list them), each with the number of positional
// arguments it takes. Names are lowercase: mage matches targets case-insensitively.
//
// It reads the source with go/ast instead of running mage, which would compile the magefiles
// (seconds cold, per test): a target is an exported top-level function, or an exported method
// of a type declared as mg.Namespace, whose parameters after an optional context.Context are
// positional arguments. A test checks this against `go tool mage -l`.
func MageTargets(dir string) (map[string]int, error) {
	ts, err := parseMagefiles(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(ts))
	for n, t := range ts {
		out[n] = t.args
	}
	return out, nil
}

// MageDocs returns each target's doc comment (mage's help text), aliases included.
func MageDocs(dir string) (map[string]string, error) {
	ts, err := parseMagefiles(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ts))
	for n, t := range ts {
		out[n] = t.doc
	}
	return out, nil
}

type mageTarget struct {
	args  int
	doc   string
	alias bool // a name in the magefiles' Aliases map: mage runs it but `mage -l` does not list it
}

// MageAliases returns the names of the Aliases map of the magefiles in dir (lowercase).
func MageAliases(dir string) (map[string]bool, error) {
	ts, err := parseMagefiles(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for n, t := range ts {
		if t.alias {
			out[n] = true
		}
	}
	return out, nil
}

func parseMagefiles(dir string) (map[string]mageTarget, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("read magefiles: no Go files in %s", dir)
	}
	var parsed []*ast.File
	namespaces := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution|parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("read magefiles: %w", err)
		}
		parsed = append(parsed, af)
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, s := range gd.Specs {
				ts := s.(*ast.TypeSpec)
				if sel, ok := ts.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Namespace" && isIdent(sel.X, "mg") {
					namespaces[ts.Name.Name] = true
				}
			}
		}
	}
	targets := map[string]mageTarget{}
	var aliases []*ast.CompositeLit
	for _, af := range parsed {
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				args, ok := targetArgs(d.Type)
				if !ok {
					continue
				}
				name := d.Name.Name
				if d.Recv != nil {
					recv := recvType(d.Recv)
					if !namespaces[recv] {
						continue
					}
					name = recv + ":" + name
				}
				targets[strings.ToLower(name)] = mageTarget{args: args, doc: d.Doc.Text()}
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, s := range d.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if n.Name == "Aliases" && i < len(vs.Values) {
							if cl, ok := vs.Values[i].(*ast.CompositeLit); ok {
								aliases = append(aliases, cl)
							}
						}
					}
				}
			}
		}
	}
	// Aliases map a name to a target expression: Ns.Method or Func.
	for _, cl := range aliases {
		for _, e := range cl.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			lit, ok := kv.Key.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				continue
			}
			alias, err := strconv.Unquote(lit.Value)
			if err != nil {
				return nil, fmt.Errorf("read magefiles: alias %s: %w", lit.Value, err)
			}
			var to string
			switch v := kv.Value.(type) {
			case *ast.SelectorExpr:
				if x, ok := v.X.(*ast.Ident); ok {
					to = x.Name + ":" + v.Sel.Name
				}
			case *ast.Ident:
				to = v.Name
			}
			t, ok := targets[strings.ToLower(to)]
			if !ok {
				return nil, fmt.Errorf("read magefiles: alias %q points at %q, which is not a target", alias, to)
			}
			t.alias = true
			targets[strings.ToLower(alias)] = t
		}
	}
	return targets, nil
}

// SortedNames returns the names of targets in order.
func SortedNames(targets map[string]int) []string {
	out := make([]string, 0, len(targets))
	for n := range targets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// targetArgs reports whether ft has a mage target's shape (optional leading context.Context,
// then string/int/float64/bool/time.Duration arguments; no result or one error) and how many
// positional arguments it takes.
func targetArgs(ft *ast.FuncType) (int, bool) {
	if ft.TypeParams != nil {
		return 0, false
	}
	if r := ft.Results; r != nil {
		if len(r.List) != 1 || len(r.List[0].Names) > 1 || !isIdent(r.List[0].Type, "error") {
			return 0, false
		}
	}
	n := 0
	for i, f := range ft.Params.List {
		count := max(len(f.Names), 1)
		if i == 0 && isSelector(f.Type, "context", "Context") && count == 1 {
			continue
		}
		switch {
		case isIdent(f.Type, "string"), isIdent(f.Type, "int"), isIdent(f.Type, "float64"), isIdent(f.Type, "bool"),
			isSelector(f.Type, "time", "Duration"):
			n += count
		default:
			return 0, false
		}
	}
	return n, true
}

func recvType(fl *ast.FieldList) string {
	if fl == nil || len(fl.List) != 1 {
		return ""
	}
	t := fl.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func isSelector(e ast.Expr, pkg, name string) bool {
	s, ok := e.(*ast.SelectorExpr)
	return ok && s.Sel.Name == name && isIdent(s.X, pkg)
}
