package opts_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOnlyEntryFilesReadOptions fails when a package under internal/ reads a ZOPS_* variable
// anywhere but its entry file (internal/<cap>/targets.go), internal/config (the override
// table and the process-wide settings) or the test support packages (internal/testenv,
// internal/testfix, which read the twin's ZOPS_TEST_* addresses): libraries take typed options.
// A read whose name is not a literal (or a constant of the same package) counts as a ZOPS_
// read unless it is listed in dynamicOK with the reason.
func TestOnlyEntryFilesReadOptions(t *testing.T) {
	dynamicOK := map[string]string{
		"internal/stacks/app.go": "fills in jsii's Node warning switches unless the user set them",
	}
	allowed := func(rel string) bool {
		return strings.HasPrefix(rel, "internal/config/") || strings.HasPrefix(rel, "internal/testenv/") ||
			strings.HasPrefix(rel, "internal/testfix/") ||
			filepath.Base(rel) == "targets.go"
	}
	root := filepath.Join("..", "..")
	var bad []string
	pkgConsts := map[string]map[string]string{} // dir -> const name -> string value
	consts := func(dir string) map[string]string {
		if c, ok := pkgConsts[dir]; ok {
			return c
		}
		c := map[string]string{}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
			if err != nil {
				continue
			}
			for _, d := range af.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || (gd.Tok != token.CONST && gd.Tok != token.VAR) {
					continue
				}
				for _, sp := range gd.Specs {
					vs := sp.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i >= len(vs.Values) {
							continue
						}
						switch v := vs.Values[i].(type) {
						case *ast.BasicLit:
							if v.Kind == token.STRING && gd.Tok == token.CONST {
								c[n.Name], _ = strconv.Unquote(v.Value)
							}
						case *ast.CompositeLit:
							// var names = []string{"A", "B"}: a range over it reads those names.
							var elems []string
							for _, e := range v.Elts {
								if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == token.STRING {
									u, _ := strconv.Unquote(bl.Value)
									elems = append(elems, u)
								}
							}
							if len(elems) == len(v.Elts) && len(elems) > 0 {
								c["[]"+n.Name] = strings.Join(elems, ",")
							}
						}
					}
				}
			}
		}
		pkgConsts[dir] = c
		return c
	}
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if allowed(rel) {
			return nil
		}
		fset := token.NewFileSet()
		af, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		rangeOver := map[string]string{} // loop variable -> names it takes (from a []string var)
		ast.Inspect(af, func(n ast.Node) bool {
			if rs, ok := n.(*ast.RangeStmt); ok {
				if x, ok := rs.X.(*ast.Ident); ok {
					if v, ok := rs.Value.(*ast.Ident); ok {
						if names, ok := consts(filepath.Dir(path))["[]"+x.Name]; ok {
							rangeOver[v.Name] = names
						}
					}
				}
			}
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Getenv" && sel.Sel.Name != "LookupEnv") {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "os" {
				return true
			}
			name := ""
			switch a := call.Args[0].(type) {
			case *ast.BasicLit:
				name, _ = strconv.Unquote(a.Value)
			case *ast.Ident:
				name = consts(filepath.Dir(path))[a.Name]
				if names, ok := rangeOver[a.Name]; ok && name == "" {
					name = names
					for _, nm := range strings.Split(names, ",") {
						if strings.HasPrefix(nm, "ZOPS_") {
							name = nm
						}
					}
				}
			}
			if name == "" {
				if _, ok := dynamicOK[rel]; ok {
					return true
				}
				name = "(a computed name)"
			} else if !strings.HasPrefix(name, "ZOPS_") {
				return true
			}
			bad = append(bad, fset.Position(call.Pos()).String()+": reads "+name)
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Errorf("%s: read it in the capability's targets.go with internal/opts and pass it as a typed option", strings.TrimPrefix(b, "../../"))
	}
}
