// The Go side of the differential fuzz oracle (tests/go_oracle.py): how net/http frames a byte
// stream of requests, as dockerd and Podman do. Reads test streams on stdin (4-byte big-endian
// length, then the bytes) and prints one JSON line per stream: every request http.ReadRequest
// finds, in order, with its byte boundaries, stopping where the server would (error, close).
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"os"
)

type counter struct {
	r io.Reader
	n int
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type message struct {
	Method   string `json:"method"`
	Target   string `json:"target"`
	Start    int    `json:"start"`
	HeadEnd  int    `json:"head_end"`
	End      int    `json:"end"`
	Body     int64  `json:"body"`
	Complete bool   `json:"complete"`
}

type result struct {
	Messages []message `json:"messages"`
	Error    string    `json:"error"`
}

func parse(stream []byte) result {
	src := &counter{r: bytes.NewReader(stream)}
	br := bufio.NewReader(src)
	res := result{Messages: []message{}}
	for {
		start := src.n - br.Buffered()
		if _, err := br.Peek(1); err != nil {
			return res
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			res.Error = err.Error()
			return res
		}
		m := message{Method: req.Method, Target: req.RequestURI, Start: start, HeadEnd: src.n - br.Buffered()}
		m.Body, err = io.Copy(io.Discard, req.Body)
		m.End, m.Complete = src.n-br.Buffered(), err == nil
		res.Messages = append(res.Messages, m)
		if err != nil {
			res.Error = err.Error()
			return res
		}
		if req.Close {
			return res
		}
	}
}

func main() {
	in, out := bufio.NewReader(os.Stdin), json.NewEncoder(os.Stdout)
	var size uint32
	for binary.Read(in, binary.BigEndian, &size) == nil {
		stream := make([]byte, size)
		if _, err := io.ReadFull(in, stream); err != nil {
			return
		}
		if out.Encode(parse(stream)) != nil {
			return
		}
	}
}
