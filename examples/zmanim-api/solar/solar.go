// Package solar computes sunrise, sunset and solar depression times with the NOAA solar
// calculator's algorithm (the equations of the NOAA spreadsheet, after Meeus), accurate to
// well under a minute for latitudes below the polar circles.
package solar

import (
	"errors"
	"math"
	"time"
)

// ErrNoEvent means the sun does not reach the requested angle that day (polar day or night).
var ErrNoEvent = errors.New("the sun does not reach that angle on this date")

// Zenith angles in degrees.
const (
	ZenithSunriseSunset = 90.833 // upper limb on the horizon with standard refraction
)

func rad(d float64) float64 { return d * math.Pi / 180 }
func deg(r float64) float64 { return r * 180 / math.Pi }

// julianCentury returns the Julian century of a moment.
func julianCentury(t time.Time) float64 {
	jd := float64(t.Unix())/86400.0 + 2440587.5
	return (jd - 2451545.0) / 36525.0
}

// position returns the solar declination (degrees) and the equation of time (minutes).
func position(t time.Time) (decl, eqTime float64) {
	c := julianCentury(t)
	l0 := math.Mod(280.46646+c*(36000.76983+c*0.0003032), 360)
	m := 357.52911 + c*(35999.05029-0.0001537*c)
	e := 0.016708634 - c*(0.000042037+0.0000001267*c)
	mr := rad(m)
	center := math.Sin(mr)*(1.914602-c*(0.004817+0.000014*c)) + math.Sin(2*mr)*(0.019993-0.000101*c) + math.Sin(3*mr)*0.000289
	trueLong := l0 + center
	omega := 125.04 - 1934.136*c
	appLong := trueLong - 0.00569 - 0.00478*math.Sin(rad(omega))
	meanObliq := 23 + (26+(21.448-c*(46.815+c*(0.00059-c*0.001813)))/60)/60
	obliq := meanObliq + 0.00256*math.Cos(rad(omega))
	decl = deg(math.Asin(math.Sin(rad(obliq)) * math.Sin(rad(appLong))))
	y := math.Pow(math.Tan(rad(obliq/2)), 2)
	l0r := rad(l0)
	eqTime = 4 * deg(y*math.Sin(2*l0r)-2*e*math.Sin(mr)+4*e*y*math.Sin(mr)*math.Cos(2*l0r)-0.5*y*y*math.Sin(4*l0r)-1.25*e*e*math.Sin(2*mr))
	return decl, eqTime
}

// Noon returns solar noon (UTC) at longitude lon on the UTC calendar date of day.
func Noon(day time.Time, lon float64) time.Time {
	base := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
	// Iterate once: the equation of time is evaluated at the approximate noon.
	noonMin := 720 - 4*lon
	for i := 0; i < 2; i++ {
		_, eq := position(base.Add(time.Duration(noonMin * float64(time.Minute))))
		noonMin = 720 - 4*lon - eq
	}
	return base.Add(time.Duration(noonMin * float64(time.Minute)))
}

// Event returns the moment the sun's centre crosses zenith angle z (degrees) on the given
// date: rising when morning is true, setting otherwise. Times are UTC.
func Event(day time.Time, lat, lon, z float64, morning bool) (time.Time, error) {
	t := Noon(day, lon)
	// Two refinements evaluate the sun's position at the event itself.
	for i := 0; i < 3; i++ {
		decl, _ := position(t)
		cosH := math.Cos(rad(z))/(math.Cos(rad(lat))*math.Cos(rad(decl))) - math.Tan(rad(lat))*math.Tan(rad(decl))
		if cosH < -1 || cosH > 1 {
			return time.Time{}, ErrNoEvent
		}
		h := deg(math.Acos(cosH)) * 4 // minutes
		noon := Noon(day, lon)
		if morning {
			t = noon.Add(-time.Duration(h * float64(time.Minute)))
		} else {
			t = noon.Add(time.Duration(h * float64(time.Minute)))
		}
	}
	return t.Truncate(time.Second), nil
}
