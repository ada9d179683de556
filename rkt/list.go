package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/rktng/rkt/pkg/pod"
	"github.com/rktng/rkt/store"
	"github.com/spf13/cobra"
)

// timeLayout is how rkt printed times in list --full and status.
const timeLayout = "2006-01-02 15:04:05.999 -0700 MST"

// podApp is one app of a pod in list and status output.
type podApp struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	ImageName string `json:"image_name,omitempty"`
	ImageID   string `json:"image_id"`
	ExitCode  *int   `json:"exit_code,omitempty"`
	// FinishedAt is nanoseconds since the epoch, as rkt's API.
	FinishedAt *int64 `json:"finished_at,omitempty"`
}

// netInfo is one network of a pod, from stage1's net-info.json.
type netInfo struct {
	NetName string `json:"netName"`
	IfName  string `json:"ifName,omitempty"`
	IP      string `json:"ip"`
	Mask    string `json:"mask,omitempty"`
}

// podInfo is what list and status print about a pod; its JSON follows
// rkt's API (v1alpha/lib) field names.
type podInfo struct {
	UUID            string            `json:"name"`
	State           string            `json:"state"`
	Networks        []netInfo         `json:"networks,omitempty"`
	AppNames        []string          `json:"app_names,omitempty"`
	Apps            []podApp          `json:"apps,omitempty"`
	CreatedAt       *int64            `json:"created_at,omitempty"`
	StartedAt       *int64            `json:"started_at,omitempty"`
	Pid             *int              `json:"pid,omitempty"`
	UserAnnotations map[string]string `json:"user_annotations,omitempty"`
	UserLabels      map[string]string `json:"user_labels,omitempty"`

	created, started time.Time
	status           pod.Status
}

func nanos(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.UnixNano()
	return &n
}

// describePod gathers what list and status show; a pod whose manifest
// cannot be read (an embryo) still gets a row.
func describePod(p *pod.Pod) podInfo {
	st := p.Status()
	info := podInfo{UUID: p.UUID, State: string(st), status: st, created: p.Created(), started: p.Started()}
	info.CreatedAt, info.StartedAt = nanos(info.created), nanos(info.started)
	exited := st == pod.StatusExited || st == pod.StatusExitedGarbage || st == pod.StatusDeleting
	if pid, err := p.Pid(); err == nil && (st == pod.StatusRunning || exited) {
		info.Pid = &pid
	}
	if b, err := os.ReadFile(p.Path(pod.NetInfoFile)); err == nil && st == pod.StatusRunning {
		_ = json.Unmarshal(b, &info.Networks)
	}
	pm, err := p.Manifest()
	if err != nil {
		return info
	}
	if len(pm.UserAnnotations) > 0 {
		info.UserAnnotations = pm.UserAnnotations
	}
	if len(pm.UserLabels) > 0 {
		info.UserLabels = pm.UserLabels
	}
	for _, ra := range pm.Apps {
		a := podApp{Name: ra.Name.String(), ImageID: ra.Image.ID.String(), State: "created"}
		if ra.Image.Name != nil {
			a.ImageName = ra.Image.Name.String()
			if v, ok := ra.Image.Labels.Get("version"); ok {
				a.ImageName += ":" + v
			}
		}
		switch {
		case st == pod.StatusRunning:
			a.State = "running"
		case exited:
			a.State = "exited"
		}
		if code, err := p.AppExitCode(a.Name); err == nil {
			a.ExitCode = &code
			a.State = "exited"
			a.FinishedAt = nanos(p.AppExitTime(a.Name))
		} else if exited {
			a.State = "unknown"
		}
		info.AppNames = append(info.AppNames, a.Name)
		info.Apps = append(info.Apps, a)
	}
	return info
}

func (i podInfo) networksString() string {
	var s []string
	for _, n := range i.Networks {
		s = append(s, n.NetName+":ip4="+n.IP)
	}
	return strings.Join(s, ",")
}

// ago prints a duration the way a person reads a list.
func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d seconds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

func init() {
	register(func() *cobra.Command {
		var full, noLegend bool
		var format outputFormat
		cmd := &cobra.Command{
			Use:   "list",
			Short: "List pods",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				pods, err := pod.List(globals.Dir)
				if err != nil {
					return err
				}
				infos := make([]podInfo, 0, len(pods))
				for _, p := range pods {
					infos = append(infos, describePod(p))
				}
				w := cmd.OutOrStdout()
				if format != formatTable {
					return writeJSON(w, format, infos)
				}
				return writeTable(w, listLegend(full), listRows(infos, full), noLegend)
			},
		}
		f := cmd.Flags()
		f.BoolVar(&full, "full", false, "print full UUIDs and image IDs, and absolute times")
		f.BoolVar(&noLegend, "no-legend", false, "suppress the legend")
		f.Var(&format, "format", "output format: json or json-pretty (default: table)")
		return cmd
	})
}

func listLegend(full bool) []string {
	if full {
		return []string{"UUID", "APP", "IMAGE NAME", "IMAGE ID", "STATE", "CREATED", "STARTED", "NETWORKS"}
	}
	return []string{"UUID", "APP", "IMAGE NAME", "STATE", "CREATED", "STARTED", "NETWORKS"}
}

func listRows(infos []podInfo, full bool) [][]string {
	sort.SliceStable(infos, func(i, j int) bool { return infos[i].created.Before(infos[j].created) })
	var rows [][]string
	for _, i := range infos {
		uuid := i.UUID
		created, started := ago(i.created), ago(i.started)
		if !full {
			uuid = uuid[:8]
		} else {
			created, started = fmtTime(i.created), fmtTime(i.started)
		}
		apps := i.Apps
		if len(apps) == 0 {
			apps = []podApp{{}}
		}
		for n, a := range apps {
			row := []string{"", a.Name, a.ImageName}
			if full {
				row = append(row, store.ShortID(a.ImageID))
			}
			if n == 0 {
				row[0] = uuid
				row = append(row, i.State, created, started, i.networksString())
			} else {
				row = append(row, "", "", "", "")
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(timeLayout)
}

// openPod finds a pod by UUID (or prefix) or --uuid-file.
func openPod(uuid, uuidFile string) (*pod.Pod, error) {
	if uuidFile != "" {
		if uuid != "" {
			return nil, errors.New("conflicting arguments: give a UUID or --uuid-file, not both")
		}
		return pod.OpenUUIDFile(globals.Dir, uuidFile)
	}
	return pod.Open(globals.Dir, uuid)
}
