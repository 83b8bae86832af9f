package edge

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cloudFrontNS is the XML namespace of the CloudFront 2020-05-31 API.
const cloudFrontNS = "http://cloudfront.amazonaws.com/doc/2020-05-31/"

type invalidation struct {
	ID              string
	CallerReference string
	Paths           []string
	Created         time.Time
	Purged          int
}

// InvalidationBatch is the CloudFront API shape.
type xmlPaths struct {
	Quantity int      `xml:"Quantity"`
	Items    []string `xml:"Items>Path"`
}

type xmlBatch struct {
	XMLName         xml.Name `xml:"InvalidationBatch"`
	Paths           xmlPaths `xml:"Paths"`
	CallerReference string   `xml:"CallerReference"`
}

type xmlInvalidation struct {
	XMLName    xml.Name `xml:"Invalidation"`
	Xmlns      string   `xml:"xmlns,attr"`
	ID         string   `xml:"Id"`
	Status     string   `xml:"Status"`
	CreateTime string   `xml:"CreateTime"`
	Batch      xmlBatch `xml:"InvalidationBatch"`
}

type xmlError struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

// Invalidate purges the paths from both tiers at once and records the invalidation (status
// Completed: the twin's purge is synchronous). It returns the invalidation id.
func (e *Edge) Invalidate(callerRef string, paths []string) (string, error) {
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return "", fmt.Errorf("invalidation path %q must start with /", p)
		}
		if i := strings.Index(p, "*"); i >= 0 && i != len(p)-1 {
			return "", fmt.Errorf("invalidation path %q: '*' may only be the last character", p)
		}
	}
	e.invMu.Lock()
	defer e.invMu.Unlock()
	if callerRef != "" {
		for _, id := range e.order {
			inv := e.invs[id]
			if inv.CallerReference == callerRef {
				if strings.Join(inv.Paths, "\n") == strings.Join(paths, "\n") {
					return inv.ID, nil
				}
				return "", errBatchExists
			}
		}
	}
	n := e.edge.purge(paths) + e.shield.purge(paths)
	inv := &invalidation{ID: "I" + strings.ToUpper(newCfID()[:13]), CallerReference: callerRef, Paths: paths, Created: e.opts.Now().UTC(), Purged: n}
	inv.ID = strings.NewReplacer("-", "X", "_", "Y").Replace(inv.ID)
	e.invs[inv.ID] = inv
	e.order = append(e.order, inv.ID)
	e.log.Info("edge invalidation", "id", inv.ID, "paths", paths, "purged", n)
	return inv.ID, nil
}

var errBatchExists = fmt.Errorf("invalidation batch already exists")

// ControlHandler serves the CloudFront API subset the toolkit uses, so aws-sdk-go-v2's
// cloudfront client works against the twin (BaseEndpoint = the control URL):
//
//	POST /2020-05-31/distribution/{id}/invalidation       CreateInvalidation
//	GET  /2020-05-31/distribution/{id}/invalidation/{iid} GetInvalidation
//	GET  /2020-05-31/distribution/{id}/invalidation       ListInvalidations (newest first)
//
// and the twin-only latency hooks:
//
//	GET  /_twin/latency   the current Latency as JSON
//	PUT  /_twin/latency   replace it (JSON body, durations like "80ms")
//	GET  /_twin/edge      tier sizes and origin request count
//
// Request signatures are not checked: the control handler listens on loopback only.
func (e *Edge) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2020-05-31/distribution/{id}/invalidation", e.createInvalidation)
	mux.HandleFunc("GET /2020-05-31/distribution/{id}/invalidation/{iid}", e.getInvalidation)
	mux.HandleFunc("GET /2020-05-31/distribution/{id}/invalidation", e.listInvalidations)
	mux.HandleFunc("GET /_twin/latency", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, e.Latency())
	})
	mux.HandleFunc("PUT /_twin/latency", func(w http.ResponseWriter, r *http.Request) {
		var l Latency
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "latency: " + err.Error()})
			return
		}
		if err := e.SetLatency(l); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "latency: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, e.Latency())
	})
	mux.HandleFunc("GET /_twin/edge", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"distribution_id": e.opts.DistributionID,
			"edge_objects":    e.edge.len(),
			"shield_objects":  e.shield.len(),
			"origin_requests": e.OriginRequests(),
		})
	})
	return mux
}

func (e *Edge) knows(id string) bool {
	return !e.opts.StrictDistributionID || id == e.opts.DistributionID
}

func (e *Edge) createInvalidation(w http.ResponseWriter, r *http.Request) {
	if !e.knows(r.PathValue("id")) {
		e.apiError(w, http.StatusNotFound, "NoSuchDistribution", "The specified distribution does not exist.")
		return
	}
	var b xmlBatch
	if err := xml.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b); err != nil {
		e.apiError(w, http.StatusBadRequest, "MalformedInput", "Could not parse the invalidation batch: "+err.Error())
		return
	}
	if b.Paths.Quantity != len(b.Paths.Items) {
		e.apiError(w, http.StatusBadRequest, "InconsistentQuantities", "Paths.Quantity does not match the number of paths.")
		return
	}
	if len(b.Paths.Items) == 0 || b.CallerReference == "" {
		e.apiError(w, http.StatusBadRequest, "InvalidArgument", "An invalidation needs at least one path and a CallerReference.")
		return
	}
	id, err := e.Invalidate(b.CallerReference, b.Paths.Items)
	switch {
	case err == errBatchExists:
		e.apiError(w, http.StatusConflict, "InvalidationBatchAlreadyExists", "A different invalidation batch with this CallerReference exists.")
		return
	case err != nil:
		e.apiError(w, http.StatusBadRequest, "InvalidArgument", err.Error())
		return
	}
	w.Header().Set("Location", "/2020-05-31/distribution/"+r.PathValue("id")+"/invalidation/"+id)
	e.writeInvalidation(w, http.StatusCreated, id)
}

func (e *Edge) getInvalidation(w http.ResponseWriter, r *http.Request) {
	if !e.knows(r.PathValue("id")) {
		e.apiError(w, http.StatusNotFound, "NoSuchDistribution", "The specified distribution does not exist.")
		return
	}
	e.writeInvalidation(w, http.StatusOK, r.PathValue("iid"))
}

type xmlSummary struct {
	ID         string `xml:"Id"`
	CreateTime string `xml:"CreateTime"`
	Status     string `xml:"Status"`
}

type xmlInvalidationList struct {
	XMLName     xml.Name     `xml:"InvalidationList"`
	Xmlns       string       `xml:"xmlns,attr"`
	Marker      string       `xml:"Marker"`
	MaxItems    int          `xml:"MaxItems"`
	IsTruncated bool         `xml:"IsTruncated"`
	Quantity    int          `xml:"Quantity"`
	Items       []xmlSummary `xml:"Items>InvalidationSummary"`
}

func (e *Edge) listInvalidations(w http.ResponseWriter, r *http.Request) {
	if !e.knows(r.PathValue("id")) {
		e.apiError(w, http.StatusNotFound, "NoSuchDistribution", "The specified distribution does not exist.")
		return
	}
	e.invMu.Lock()
	out := xmlInvalidationList{Xmlns: cloudFrontNS, MaxItems: 100}
	for i := len(e.order) - 1; i >= 0 && len(out.Items) < 100; i-- {
		inv := e.invs[e.order[i]]
		out.Items = append(out.Items, xmlSummary{ID: inv.ID, CreateTime: inv.Created.Format(time.RFC3339), Status: "Completed"})
	}
	e.invMu.Unlock()
	out.Quantity = len(out.Items)
	writeXML(w, http.StatusOK, out)
}

func (e *Edge) writeInvalidation(w http.ResponseWriter, status int, id string) {
	e.invMu.Lock()
	inv, ok := e.invs[id]
	e.invMu.Unlock()
	if !ok {
		e.apiError(w, http.StatusNotFound, "NoSuchInvalidation", "The specified invalidation does not exist.")
		return
	}
	out := xmlInvalidation{
		Xmlns:      cloudFrontNS,
		ID:         inv.ID,
		Status:     "Completed",
		CreateTime: inv.Created.Format(time.RFC3339),
		Batch: xmlBatch{
			Paths:           xmlPaths{Quantity: len(inv.Paths), Items: inv.Paths},
			CallerReference: inv.CallerReference,
		},
	}
	writeXML(w, status, out)
}

func (e *Edge) apiError(w http.ResponseWriter, status int, code, msg string) {
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	writeXML(w, status, xmlError{Xmlns: cloudFrontNS, Type: typ, Code: code, Message: msg, RequestID: newCfID()[:36]})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(b)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
