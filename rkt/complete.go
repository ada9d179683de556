package main

import (
	"strings"

	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

// Shell completion of what only the data directory knows: pod UUIDs
// (with their state and apps), app names of the pod already named, and
// images of the store. Commands say what they take in their Use line
// (UUID, IMAGE, --app=NAME); completion follows it, so a new command gets
// it by naming its arguments the same way.

// addCompletions walks the command tree and attaches the completions
// each command's Use line asks for.
func addCompletions(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		addCompletions(c)
	}
	use := " " + cmd.Use + " "
	switch {
	case cmd.ValidArgsFunction != nil:
	case strings.Contains(use, " UUID ") || strings.Contains(use, " UUID... ") || strings.Contains(use, " [UUID...] "):
		cmd.ValidArgsFunction = completePodArg
	case strings.HasPrefix(cmd.Use, "cp "):
		cmd.ValidArgsFunction = completeCopyArg
	case strings.Contains(use, " IMAGE ") || strings.Contains(use, " IMAGE... ") || strings.Contains(use, " [IMAGE...] "):
		cmd.ValidArgsFunction = completeImageArg
	}
	if cmd.Flags().Lookup("app") != nil {
		_ = cmd.RegisterFlagCompletionFunc("app", completeAppFlag)
	}
	// Flags with a fixed set of values; the same flag reached from
	// another command is already registered, which is not an error here.
	for name, values := range flagValues {
		if cmd.Flag(name) != nil {
			_ = cmd.RegisterFlagCompletionFunc(name, completeValues(values, name == "insecure-options"))
		}
	}
}

// flagValues are the values of the flags that take one of a fixed set.
var flagValues = map[string][]string{
	"ipc":              {"auto", "private", "parent"},
	"pull-policy":      {"new", "update", "never"},
	"format":           {"json", "json-pretty"},
	"insecure-options": strings.Split(insecureOptionNames(), ", "),
}

// completeValues offers values; for a comma-separated list, the values
// that may follow the last comma.
func completeValues(values []string, list bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		head := ""
		if i := strings.LastIndexByte(toComplete, ','); list && i >= 0 {
			head, toComplete = toComplete[:i+1], toComplete[i+1:]
		}
		var out []string
		for _, v := range values {
			if strings.HasPrefix(v, toComplete) {
				out = append(out, head+v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completePodArg offers pod UUIDs, as the first argument (or every one,
// for commands that take several).
func completePodArg(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 && !strings.Contains(cmd.Use, "UUID...") {
		return nil, cobra.ShellCompDirectiveDefault
	}
	return podCompletions(toComplete, ""), cobra.ShellCompDirectiveNoFileComp
}

// completeCopyArg offers "UUID:" for either argument of cp, and files.
func completeCopyArg(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if strings.Contains(toComplete, ":") || strings.HasPrefix(toComplete, "/") || strings.HasPrefix(toComplete, ".") {
		return nil, cobra.ShellCompDirectiveDefault
	}
	return podCompletions(toComplete, ":"), cobra.ShellCompDirectiveNoSpace
}

func podCompletions(prefix, suffix string) []string {
	pods, err := pod.List(globals.Dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range pods {
		if !strings.HasPrefix(p.UUID, prefix) {
			continue
		}
		desc := string(p.Status())
		if pm, err := p.Manifest(); err == nil {
			var apps []string
			for _, ra := range pm.Apps {
				apps = append(apps, ra.Name.String())
			}
			if len(apps) > 0 {
				desc += ": " + strings.Join(apps, ", ")
			}
		}
		out = append(out, p.UUID+suffix+"\t"+desc)
	}
	return out
}

// completeAppFlag offers the apps of the pod named by the first argument.
func completeAppFlag(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	var uuid string
	for _, a := range args {
		if u, _, ok := splitPodPath(a); ok {
			uuid = u
			break
		}
		if !strings.Contains(a, "/") {
			uuid = a
			break
		}
	}
	if uuid == "" {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	p, err := pod.Open(globals.Dir, uuid)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	pm, err := p.Manifest()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, ra := range pm.Apps {
		if n := ra.Name.String(); strings.HasPrefix(n, toComplete) {
			out = append(out, n)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeImageArg offers the images of the store by name, and files
// (an image may be given by path).
func completeImageArg(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if strings.HasPrefix(toComplete, "/") || strings.HasPrefix(toComplete, ".") {
		return nil, cobra.ShellCompDirectiveDefault
	}
	st, err := store.Open(globals.Dir)
	if err != nil {
		return nil, cobra.ShellCompDirectiveDefault
	}
	images, err := st.List()
	if err != nil {
		return nil, cobra.ShellCompDirectiveDefault
	}
	var out []string
	seen := map[string]bool{}
	for _, im := range images {
		if strings.HasPrefix(im.Name, toComplete) && !seen[im.Name] {
			seen[im.Name] = true
			out = append(out, im.Name+"\t"+im.ID[:min(len(im.ID), 19)])
		}
	}
	return out, cobra.ShellCompDirectiveDefault
}
