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
		"internal/infra/app.go": "fills in jsii's Node warning switches unless the user set them",
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
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, sp := range gd.Specs {
					vs := sp.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind == token.STRING {
								c[n.Name], _ = strconv.Unquote(bl.Value)
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
		ast.Inspect(af, func(n ast.Node) bool {
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
