package strategy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// CronSchedule is a parsed CronJob schedule: the times it fires.
type CronSchedule interface {
	// Next is the first time after t that the schedule fires, in t's
	// location, or the zero time when it fires on none of the next five
	// years (the 30th of February).
	Next(t time.Time) time.Time
}

// ParseCronSchedule parses a CronJob schedule the way upstream does (it
// uses github.com/robfig/cron/v3's standard parser, whose semantics and
// messages these are): five fields (minute, hour, day of month, month,
// day of week) with *, ?, lists, ranges, steps and month/day names, or
// one of the descriptors @yearly, @annually, @monthly, @weekly, @daily,
// @midnight, @hourly and "@every <duration>". A "TZ=" or "CRON_TZ="
// prefix names a time zone; without one the schedule runs in the
// location of the times it is given, as the controller's local time.
//
// As in cron, when both the day of month and the day of week are
// restricted (neither starts with *), a day matching either fires.
func ParseCronSchedule(spec string) (CronSchedule, error) {
	if spec == "" {
		return nil, fmt.Errorf("empty spec string")
	}
	loc := time.Local
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		i := strings.Index(spec, " ")
		eq := strings.Index(spec, "=")
		if i < 0 {
			i = len(spec)
		}
		var err error
		if loc, err = time.LoadLocation(spec[eq+1 : i]); err != nil {
			return nil, fmt.Errorf("provided bad location %s: %v", spec[eq+1:i], err)
		}
		spec = strings.TrimSpace(spec[i:])
	}
	if strings.HasPrefix(spec, "@") {
		return parseCronDescriptor(spec, loc)
	}
	fields := strings.Fields(spec)
	if len(fields) != 5 {
		return nil, fmt.Errorf("expected exactly 5 fields, found %d: %s", len(fields), fields)
	}
	var bits [5]uint64
	for i, f := range fields {
		b, err := parseCronField(f, cronBounds[i])
		if err != nil {
			return nil, err
		}
		bits[i] = b
	}
	return &cronSpec{minute: bits[0], hour: bits[1], dom: bits[2], month: bits[3], dow: bits[4], loc: loc}, nil
}

// parseCronSchedule checks a CronJob schedule (see ParseCronSchedule).
func parseCronSchedule(spec string) error {
	_, err := ParseCronSchedule(spec)
	return err
}

func parseCronDescriptor(spec string, loc *time.Location) (CronSchedule, error) {
	all := func(b cronBound) uint64 { return cronBits(b.min, b.max, 1) | cronStar }
	hour, dom, month, dow := cronBounds[1], cronBounds[2], cronBounds[3], cronBounds[4]
	switch spec {
	case "@yearly", "@annually":
		return &cronSpec{minute: 1, hour: 1, dom: 1 << 1, month: 1 << 1, dow: all(dow), loc: loc}, nil
	case "@monthly":
		return &cronSpec{minute: 1, hour: 1, dom: 1 << 1, month: all(month), dow: all(dow), loc: loc}, nil
	case "@weekly":
		return &cronSpec{minute: 1, hour: 1, dom: all(dom), month: all(month), dow: 1, loc: loc}, nil
	case "@daily", "@midnight":
		return &cronSpec{minute: 1, hour: 1, dom: all(dom), month: all(month), dow: all(dow), loc: loc}, nil
	case "@hourly":
		return &cronSpec{minute: 1, hour: all(hour), dom: all(dom), month: all(month), dow: all(dow), loc: loc}, nil
	}
	const every = "@every "
	if strings.HasPrefix(spec, every) {
		d, err := time.ParseDuration(spec[len(every):])
		if err != nil {
			return nil, fmt.Errorf("failed to parse duration %s: %s", spec, err)
		}
		// Whole seconds, at least one, as the cron library's Every.
		if d < time.Second {
			d = time.Second
		}
		return cronEvery(d - d%time.Second), nil
	}
	return nil, fmt.Errorf("unrecognized descriptor: %s", spec)
}

type cronBound struct {
	min, max int
	names    map[string]int
}

var cronBounds = [5]cronBound{
	{0, 59, nil}, // minute
	{0, 23, nil}, // hour
	{1, 31, nil}, // day of month
	{1, 12, map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}},
	{0, 6, map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}},
}

// cronStar marks a field written with * or ?: it matters for the day of
// month and the day of week, which fire together when neither is starred
// and either way otherwise.
const cronStar = 1 << 63

// parseCronField parses one field, a comma-separated list of ranges, into
// a bit set of the values it allows.
func parseCronField(f string, b cronBound) (uint64, error) {
	var bits uint64
	for _, expr := range strings.FieldsFunc(f, func(r rune) bool { return r == ',' }) {
		r, err := parseCronRange(expr, b)
		if err != nil {
			return 0, err
		}
		bits |= r
	}
	return bits, nil
}

// parseCronRange parses number | name | * | ?, optionally "-end" and
// "/step".
func parseCronRange(expr string, b cronBound) (uint64, error) {
	rangeAndStep := strings.Split(expr, "/")
	lowAndHigh := strings.Split(rangeAndStep[0], "-")
	single := len(lowAndHigh) == 1
	var start, end, step int
	var star uint64
	var err error
	if lowAndHigh[0] == "*" || lowAndHigh[0] == "?" {
		start, end, star = b.min, b.max, cronStar
	} else {
		if start, err = cronIntOrName(lowAndHigh[0], b.names); err != nil {
			return 0, err
		}
		switch len(lowAndHigh) {
		case 1:
			end = start
		case 2:
			if end, err = cronIntOrName(lowAndHigh[1], b.names); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("too many hyphens: %s", expr)
		}
	}
	switch len(rangeAndStep) {
	case 1:
		step = 1
	case 2:
		if step, err = cronInt(rangeAndStep[1]); err != nil {
			return 0, err
		}
		if single {
			end = b.max // "N/step" is "N-max/step"
		}
		if step > 1 {
			star = 0
		}
	default:
		return 0, fmt.Errorf("too many slashes: %s", expr)
	}
	switch {
	case start < b.min:
		return 0, fmt.Errorf("beginning of range (%d) below minimum (%d): %s", start, b.min, expr)
	case end > b.max:
		return 0, fmt.Errorf("end of range (%d) above maximum (%d): %s", end, b.max, expr)
	case start > end:
		return 0, fmt.Errorf("beginning of range (%d) beyond end of range (%d): %s", start, end, expr)
	case step == 0:
		return 0, fmt.Errorf("step of range should be a positive number: %s", expr)
	}
	return cronBits(start, end, step) | star, nil
}

// cronBits sets the bits start, start+step... up to end.
func cronBits(start, end, step int) uint64 {
	if step == 1 {
		return ^(math.MaxUint64 << uint(end+1)) & (math.MaxUint64 << uint(start))
	}
	var bits uint64
	for i := start; i <= end; i += step {
		bits |= 1 << uint(i)
	}
	return bits
}

func cronIntOrName(s string, names map[string]int) (int, error) {
	if names != nil {
		if n, ok := names[strings.ToLower(s)]; ok {
			return n, nil
		}
	}
	return cronInt(s)
}

func cronInt(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("failed to parse int from %s: %s", s, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("negative number (%d) not allowed: %s", n, s)
	}
	return n, nil
}

// cronSpec is a five-field schedule: a bit set per field.
type cronSpec struct {
	minute, hour, dom, month, dow uint64
	loc                           *time.Location
}

// Next finds the next matching minute field by field, from the month
// down, as the cron library does: a field that does not match moves
// time to the start of its next value and zeroes the smaller fields
// (once), and a field that wraps around starts the search again.
func (s *cronSpec) Next(t time.Time) time.Time {
	orig := t.Location()
	loc := s.loc
	if loc == time.Local {
		loc = t.Location()
	} else {
		t = t.In(loc)
	}
	// The earliest candidate is the next whole second; the seconds field
	// is always 0, so it becomes the next whole minute below.
	t = t.Add(time.Second - time.Duration(t.Nanosecond()))
	zeroed := false
	yearLimit := t.Year() + 5
wrap:
	if t.Year() > yearLimit {
		return time.Time{}
	}
	for 1<<uint(t.Month())&s.month == 0 {
		if !zeroed {
			zeroed = true
			t = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
		}
		t = t.AddDate(0, 1, 0)
		if t.Month() == time.January {
			goto wrap
		}
	}
	for !s.dayMatches(t) {
		if !zeroed {
			zeroed = true
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
		}
		t = t.AddDate(0, 0, 1)
		// A daylight saving change can move midnight: back to 0:00.
		if h := t.Hour(); h != 0 {
			if h > 12 {
				t = t.Add(time.Duration(24-h) * time.Hour)
			} else {
				t = t.Add(-time.Duration(h) * time.Hour)
			}
		}
		if t.Day() == 1 {
			goto wrap
		}
	}
	for 1<<uint(t.Hour())&s.hour == 0 {
		if !zeroed {
			zeroed = true
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, loc)
		}
		t = t.Add(time.Hour)
		if t.Hour() == 0 {
			goto wrap
		}
	}
	for 1<<uint(t.Minute())&s.minute == 0 {
		if !zeroed {
			zeroed = true
			t = t.Truncate(time.Minute)
		}
		t = t.Add(time.Minute)
		if t.Minute() == 0 {
			goto wrap
		}
	}
	for t.Second() != 0 {
		if !zeroed {
			zeroed = true
			t = t.Truncate(time.Second)
		}
		t = t.Add(time.Second)
		if t.Second() == 0 {
			goto wrap
		}
	}
	return t.In(orig)
}

func (s *cronSpec) dayMatches(t time.Time) bool {
	dom := 1<<uint(t.Day())&s.dom > 0
	dow := 1<<uint(t.Weekday())&s.dow > 0
	if s.dom&cronStar > 0 || s.dow&cronStar > 0 {
		return dom && dow
	}
	return dom || dow
}

// cronEvery is "@every <duration>": a fixed delay from the given time,
// rounded to the second.
type cronEvery time.Duration

func (d cronEvery) Next(t time.Time) time.Time {
	return t.Add(time.Duration(d) - time.Duration(t.Nanosecond()))
}
