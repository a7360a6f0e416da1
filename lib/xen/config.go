package xen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/xstream/xstream/lib/libxl"
	"github.com/xstream/xstream/lib/restore"
)

// Config is an xl domain configuration as an xl save file carries it:
// libxl's JSON (what xl save writes, with a terminating NUL) or xl's text
// format (what a config file holds).
type Config struct {
	Data []byte
	JSON bool
}

// TextConfig returns a config in xl's text format, such as a file of
// /etc/xen.
func TextConfig(b []byte) Config { return Config{Data: b} }

// Name returns the domain name the config gives, or "".
func (c Config) Name() string { return restore.NameFromConfig(c.Data) }

// jsonConfig is the part of libxl's domain config JSON we look at.
type jsonConfig struct {
	CInfo struct {
		Type string `json:"type"`
	} `json:"c_info"`
	BInfo struct {
		Type               string `json:"type"`
		DeviceModelVersion string `json:"device_model_version"`
	} `json:"b_info"`
}

var (
	textName    = regexp.MustCompile(`(?m)^([ \t]*name[ \t]*=[ \t]*)("[^"\n]*"|'[^'\n]*')`)
	textType    = regexp.MustCompile(`(?m)^[ \t]*(?:type|builder)[ \t]*=[ \t]*["']([a-z]+)["']`)
	textDMModel = regexp.MustCompile(`(?m)^[ \t]*device_model_version[ \t]*=[ \t]*["']([a-z-]+)["']`)
)

// Type returns the guest type the config gives: pv, pvh, hvm or "".
func (c Config) Type() string {
	if c.JSON {
		var j jsonConfig
		if json.Unmarshal(bytes.TrimRight(c.Data, "\x00"), &j) == nil {
			if j.CInfo.Type != "" {
				return j.CInfo.Type
			}
			return j.BInfo.Type
		}
		return ""
	}
	if m := textType.FindSubmatch(c.Data); m != nil {
		if t := string(m[1]); t == "generic" {
			return "pv"
		} else {
			return t
		}
	}
	return ""
}

// Emulator returns the libxl emulator id of the config's device model:
// qemu-xen (upstream, libxl's default) unless qemu-xen-traditional is
// named.
func (c Config) Emulator() uint32 {
	dm := ""
	if c.JSON {
		var j jsonConfig
		if json.Unmarshal(bytes.TrimRight(c.Data, "\x00"), &j) == nil {
			dm = j.BInfo.DeviceModelVersion
		}
	} else if m := textDMModel.FindSubmatch(c.Data); m != nil {
		dm = string(m[1])
	}
	if dm == "qemu_xen_traditional" || dm == "qemu-xen-traditional" {
		return libxl.EmulatorQemuTrad
	}
	return libxl.EmulatorQemuUpstream
}

// WithName returns the config with the domain named name.
func (c Config) WithName(name string) (Config, error) {
	if c.JSON {
		nul := bytes.HasSuffix(c.Data, []byte{0})
		var top map[string]json.RawMessage
		if err := json.Unmarshal(bytes.TrimRight(c.Data, "\x00"), &top); err != nil {
			return c, fmt.Errorf("xen: the domain config is not valid JSON: %w", err)
		}
		var cinfo map[string]json.RawMessage
		if raw, ok := top["c_info"]; ok {
			if err := json.Unmarshal(raw, &cinfo); err != nil {
				return c, fmt.Errorf("xen: the domain config's c_info: %w", err)
			}
		}
		if cinfo == nil {
			cinfo = map[string]json.RawMessage{}
		}
		n, _ := json.Marshal(name)
		cinfo["name"] = n
		var err error
		if top["c_info"], err = json.Marshal(cinfo); err != nil {
			return c, err
		}
		b, err := json.MarshalIndent(top, "", "    ")
		if err != nil {
			return c, err
		}
		if nul {
			b = append(b, 0)
		}
		return Config{Data: b, JSON: true}, nil
	}
	data := bytes.TrimRight(c.Data, "\x00")
	quoted := fmt.Appendf(nil, "%q", name)
	if textName.Match(data) {
		data = textName.ReplaceAllFunc(data, func(m []byte) []byte {
			sub := textName.FindSubmatch(m)
			return append(append([]byte(nil), sub[1]...), quoted...)
		})
	} else {
		data = append(append(bytes.Clone(data), "\nname = "...), quoted...)
		data = append(data, '\n')
	}
	return Config{Data: data}, nil
}

// ErrNeedConfig is returned for a stream without an xl header (a libxl or
// bare libxc stream) when no config is given: xl restore needs one.
var ErrNeedConfig = errors.New("the stream has no xl header with the domain's configuration, and xl restore needs one: give an xl domain config file")
