package loadtest

import (
	"math/bits"
	"time"
)

// Histogram is an HDR-style log-linear latency histogram in microseconds: values below 128 µs
// are exact, above that every power of two is split into 64 buckets, so any recorded value is
// reported within 1/64 (1.6%) of its true value. It has a fixed size (no allocation on Record),
// can be merged, and serialises compactly (only non-empty buckets), which is what the regional
// runners upload so that percentiles can be aggregated exactly rather than averaged.
//
// A Histogram is not safe for concurrent use; the engine guards it.
type Histogram struct {
	counts [histBuckets]uint64
	total  uint64
	sumUS  uint64
	maxUS  uint64
}

const (
	histSubBits  = 7
	histSub      = 1 << histSubBits // 128 exact buckets
	histHalf     = histSub / 2
	histMaxExp   = 32 - histSubBits // values up to 2^32 µs (~71 min)
	histBuckets  = histSub + histMaxExp*histHalf
	histMaxValue = uint64(1)<<32 - 1
)

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	if v > histMaxValue {
		v = histMaxValue
	}
	e := bits.Len64(v) - histSubBits // >= 1
	return histSub + (e-1)*histHalf + int(v>>uint(e)) - histHalf
}

// histUpper returns the highest value that falls in bucket i.
func histUpper(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	e := (i-histSub)/histHalf + 1
	m := uint64((i-histSub)%histHalf + histHalf)
	return (m+1)<<uint(e) - 1
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	v := uint64(us)
	h.counts[histIndex(v)]++
	h.total++
	h.sumUS += v
	if v > h.maxUS {
		h.maxUS = v
	}
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest observation.
func (h *Histogram) Max() time.Duration { return time.Duration(h.maxUS) * time.Microsecond }

// Mean is the arithmetic mean of the observations.
func (h *Histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sumUS/h.total) * time.Microsecond
}

// Quantile returns the value at quantile q (0..1), e.g. 0.95 for p95: the upper bound of the
// bucket holding the ceil(q*n)-th observation, capped at the recorded maximum.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.999999999)
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := histUpper(i)
			if v > h.maxUS {
				v = h.maxUS
			}
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}

// Merge adds all observations of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sumUS += o.sumUS
	if o.maxUS > h.maxUS {
		h.maxUS = o.maxUS
	}
}

// HistogramData is the serialised form: non-empty buckets as [index, count] pairs.
type HistogramData struct {
	Buckets [][2]uint64 `json:"buckets"`
	SumUS   uint64      `json:"sum_us"`
	MaxUS   uint64      `json:"max_us"`
}

// Data returns the compact serialisable form of h.
func (h *Histogram) Data() HistogramData {
	d := HistogramData{SumUS: h.sumUS, MaxUS: h.maxUS, Buckets: [][2]uint64{}}
	for i, c := range h.counts {
		if c > 0 {
			d.Buckets = append(d.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return d
}

// HistogramFromData rebuilds a histogram; out-of-range bucket indexes are an error.
func HistogramFromData(d HistogramData) (*Histogram, error) {
	h := &Histogram{sumUS: d.SumUS, maxUS: d.MaxUS}
	for _, b := range d.Buckets {
		if b[0] >= histBuckets {
			return nil, errBadHistogram
		}
		h.counts[b[0]] += b[1]
		h.total += b[1]
	}
	return h, nil
}
