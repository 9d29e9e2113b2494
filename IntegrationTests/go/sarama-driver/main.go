// sarama-driver drives Shopify/sarama (Debian's 1.22.1) for Kayak's integration tests, the Go counterpart of
// IntegrationTests/python/*.py and js/*.js: the first argument names the operation, the request is one JSON object
// on stdin, the answer one JSON line on stdout; diagnostics go to stderr.
//
//	produce      {bootstrap, topic, version, records: [{key, value, partition, headers: [[k, v]]}], acks, compression, idempotent}
//	             -> {"acks": [{partition, offset}], "errors": ["..."]} (errors: one per failed record; exit 0 either way)
//	consume      {bootstrap, topic, version, timeout_ms} -> {"records": [...]}: every partition from the oldest offset up
//	             to the high watermark read at the start
//	group        {bootstrap, topic, group, version, count, timeout_ms, session_timeout_ms, heartbeat_interval_ms}
//	             -> {"records": [...], "assignments": [[...]]}: joins the group, marks every record it consumes and
//	             leaves (committing) after count records
//	group_member first stdin line {bootstrap, topic, group, version, session_timeout_ms, heartbeat_interval_ms};
//	             prints {"event": "assigned", "partitions": [...]} per session; "close" (or EOF) on stdin leaves the
//	             group and exits
//	admin        {bootstrap, version, op: create_topic|delete_topic|describe_topic|list_topics, topic, partitions}
//
// Every request may carry "security": {tls_ca, sasl_mechanism, username, password, token} (security.go).
//
// version is a Kafka version string for sarama's Config.Version ("2.2.0", "0.10.2.0", ...): it picks the request
// versions and the record format (magic 2 from 0.11 on) sarama uses; sarama 1.22 does not negotiate with ApiVersions.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"log"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

type header [2]*string

type inRecord struct {
	Key       *string  `json:"key"`
	Value     *string  `json:"value"`
	Partition int32    `json:"partition"`
	Headers   []header `json:"headers"`
}

type request struct {
	Bootstrap           string     `json:"bootstrap"`
	Topic               string     `json:"topic"`
	Group               string     `json:"group"`
	Version             string     `json:"version"`
	ClientID            string     `json:"client_id"`
	Records             []inRecord `json:"records"`
	Acks                string     `json:"acks"`
	Compression         string     `json:"compression"`
	Idempotent          bool       `json:"idempotent"`
	Count               int        `json:"count"`
	TimeoutMs           int        `json:"timeout_ms"`
	SessionTimeoutMs    int        `json:"session_timeout_ms"`
	HeartbeatIntervalMs int        `json:"heartbeat_interval_ms"`
	Op                  string     `json:"op"`
	Partitions          int32      `json:"partitions"`
	Security            *security  `json:"security"`
}

type outRecord struct {
	Topic     string      `json:"topic"`
	Partition int32       `json:"partition"`
	Offset    int64       `json:"offset"`
	Key       *string     `json:"key"`
	Value     *string     `json:"value"`
	Headers   [][2]string `json:"headers"`
	Timestamp int64       `json:"timestamp"`
}

var stdout = struct {
	sync.Mutex
	w *bufio.Writer
}{w: bufio.NewWriter(os.Stdout)}

func reply(v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		log.Fatalf("marshal reply: %v", err)
	}
	stdout.Lock()
	defer stdout.Unlock()
	stdout.w.Write(b)
	stdout.w.WriteByte('\n')
	stdout.w.Flush()
}

func main() {
	log.SetOutput(os.Stderr)
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	if len(os.Args) != 2 {
		log.Fatalf("usage: %s produce|consume|group|group_member|admin < request.json", os.Args[0])
	}
	if os.Getenv("SARAMA_DEBUG") == "1" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Ltime|log.Lmicroseconds)
	}
	op := os.Args[1]
	in := bufio.NewReader(os.Stdin)
	var req request
	if op == "group_member" {
		// The first line only: the rest of stdin carries "close".
		line, err := in.ReadString('\n')
		if err != nil && line == "" {
			log.Fatalf("read request: %v", err)
		}
		mustUnmarshal([]byte(line), &req)
	} else {
		data, err := ioutil.ReadAll(in)
		if err != nil {
			log.Fatalf("read request: %v", err)
		}
		mustUnmarshal(data, &req)
	}
	switch op {
	case "produce":
		produce(&req)
	case "consume":
		consume(&req)
	case "group":
		groupConsume(&req)
	case "group_member":
		groupMember(&req, in)
	case "admin":
		admin(&req)
	default:
		log.Fatalf("unknown operation %q", op)
	}
}

func mustUnmarshal(data []byte, req *request) {
	if err := json.Unmarshal(data, req); err != nil {
		log.Fatalf("request is not JSON: %v", err)
	}
}

func config(req *request) *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "kayak-itest-sarama"
	if req.ClientID != "" {
		c.ClientID = req.ClientID
	}
	c.Version = sarama.MaxVersion
	if req.Version != "" {
		v, err := sarama.ParseKafkaVersion(req.Version)
		if err != nil {
			log.Fatalf("version: %v", err)
		}
		c.Version = v
	}
	c.Net.DialTimeout = 10 * time.Second
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	applySecurity(c, req.Security)
	return c
}

func bootstrap(req *request) []string { return strings.Split(req.Bootstrap, ",") }

func produce(req *request) {
	c := config(req)
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.Retry.Backoff = 100 * time.Millisecond
	switch req.Acks {
	case "", "all", "-1":
		c.Producer.RequiredAcks = sarama.WaitForAll
	case "1":
		c.Producer.RequiredAcks = sarama.WaitForLocal
	case "0":
		c.Producer.RequiredAcks = sarama.NoResponse
	default:
		log.Fatalf("acks %q", req.Acks)
	}
	switch req.Compression {
	case "", "none":
		c.Producer.Compression = sarama.CompressionNone
	case "gzip":
		c.Producer.Compression = sarama.CompressionGZIP
	case "snappy":
		c.Producer.Compression = sarama.CompressionSnappy
	case "lz4":
		c.Producer.Compression = sarama.CompressionLZ4
	case "zstd":
		c.Producer.Compression = sarama.CompressionZSTD
	default:
		log.Fatalf("compression %q", req.Compression)
	}
	if req.Idempotent {
		// sarama's own preconditions for Producer.Idempotent (config.Validate).
		c.Producer.Idempotent = true
		c.Net.MaxOpenRequests = 1
		c.Producer.RequiredAcks = sarama.WaitForAll
	}
	producer, err := sarama.NewSyncProducer(bootstrap(req), c)
	if err != nil {
		log.Fatalf("new producer: %v", err)
	}
	headersAllowed := c.Version.IsAtLeast(sarama.V0_11_0_0)
	msgs := make([]*sarama.ProducerMessage, len(req.Records))
	for i, r := range req.Records {
		m := &sarama.ProducerMessage{Topic: req.Topic, Partition: r.Partition}
		if r.Key != nil {
			m.Key = sarama.StringEncoder(*r.Key)
		}
		if r.Value != nil {
			m.Value = sarama.StringEncoder(*r.Value)
		}
		if headersAllowed {
			for _, h := range r.Headers {
				rh := sarama.RecordHeader{Key: []byte(deref(h[0]))}
				if h[1] != nil {
					rh.Value = []byte(*h[1])
				}
				m.Headers = append(m.Headers, rh)
			}
		}
		msgs[i] = m
	}
	// One SendMessages call: sarama batches per partition and keeps each partition's order.
	sendErr := producer.SendMessages(msgs)
	errs := []string{}
	if sendErr != nil {
		if pe, ok := sendErr.(sarama.ProducerErrors); ok {
			for _, e := range pe {
				errs = append(errs, fmt.Sprintf("partition %d: %v", e.Msg.Partition, e.Err))
			}
		} else {
			errs = append(errs, sendErr.Error())
		}
	}
	acks := make([]map[string]int64, 0, len(msgs))
	for _, m := range msgs {
		acks = append(acks, map[string]int64{"partition": int64(m.Partition), "offset": m.Offset})
	}
	if err := producer.Close(); err != nil {
		errs = append(errs, "close: "+err.Error())
	}
	if sendErr != nil {
		acks = []map[string]int64{}
	}
	reply(map[string]interface{}{"acks": acks, "errors": errs})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func text(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func toOut(m *sarama.ConsumerMessage) outRecord {
	headers := [][2]string{}
	for _, h := range m.Headers {
		headers = append(headers, [2]string{string(h.Key), string(h.Value)})
	}
	ts := int64(-1)
	if !m.Timestamp.IsZero() && m.Timestamp.Unix() > 0 {
		ts = m.Timestamp.UnixNano() / int64(time.Millisecond)
	}
	return outRecord{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: text(m.Key), Value: text(m.Value), Headers: headers, Timestamp: ts}
}

func deadline(req *request) time.Duration {
	if req.TimeoutMs > 0 {
		return time.Duration(req.TimeoutMs) * time.Millisecond
	}
	return 60 * time.Second
}

func consume(req *request) {
	c := config(req)
	c.Consumer.Return.Errors = true
	client, err := sarama.NewClient(bootstrap(req), c)
	if err != nil {
		log.Fatalf("new client: %v", err)
	}
	defer client.Close()
	partitions, err := client.Partitions(req.Topic)
	if err != nil {
		log.Fatalf("partitions of %s: %v", req.Topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		log.Fatalf("new consumer: %v", err)
	}
	timeout := time.After(deadline(req))
	records := []outRecord{}
	for _, p := range partitions {
		end, err := client.GetOffset(req.Topic, p, sarama.OffsetNewest)
		if err != nil {
			log.Fatalf("high watermark of %d: %v", p, err)
		}
		start, err := client.GetOffset(req.Topic, p, sarama.OffsetOldest)
		if err != nil {
			log.Fatalf("log start of %d: %v", p, err)
		}
		if end <= start {
			continue
		}
		pc, err := consumer.ConsumePartition(req.Topic, p, sarama.OffsetOldest)
		if err != nil {
			log.Fatalf("consume partition %d: %v", p, err)
		}
	loop:
		for {
			select {
			case m := <-pc.Messages():
				if m.Offset < end {
					records = append(records, toOut(m))
				}
				if m.Offset >= end-1 {
					break loop
				}
			case e := <-pc.Errors():
				log.Fatalf("partition %d: %v", p, e)
			case <-timeout:
				log.Printf("timeout in partition %d (end %d) after %d records", p, end, len(records))
				os.Exit(2)
			}
		}
		pc.Close()
	}
	consumer.Close()
	reply(map[string]interface{}{"records": records})
}

func groupConfig(req *request) *sarama.Config {
	c := config(req)
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.CommitInterval = 200 * time.Millisecond
	c.Consumer.Group.Rebalance.Retry.Backoff = 200 * time.Millisecond
	if req.SessionTimeoutMs > 0 {
		c.Consumer.Group.Session.Timeout = time.Duration(req.SessionTimeoutMs) * time.Millisecond
	}
	if req.HeartbeatIntervalMs > 0 {
		c.Consumer.Group.Heartbeat.Interval = time.Duration(req.HeartbeatIntervalMs) * time.Millisecond
	}
	return c
}

// handler reports each session's claims and, when records is set, marks and collects what it consumes until limit.
type handler struct {
	topic   string
	mu      sync.Mutex
	records []outRecord
	limit   int
	done    chan struct{}
	doneOne sync.Once
	claims  [][]int32
	printed bool // group_member: print each assignment as an event
}

func (h *handler) Setup(s sarama.ConsumerGroupSession) error {
	parts := append([]int32{}, s.Claims()[h.topic]...)
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	h.mu.Lock()
	h.claims = append(h.claims, parts)
	h.mu.Unlock()
	if h.printed {
		reply(map[string]interface{}{"event": "assigned", "partitions": parts, "generation": s.GenerationID(), "member": s.MemberID()})
	}
	return nil
}

func (h *handler) Cleanup(s sarama.ConsumerGroupSession) error {
	if h.printed {
		reply(map[string]interface{}{"event": "revoked"})
	}
	return nil
}

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		if h.limit <= 0 {
			continue
		}
		h.mu.Lock()
		if len(h.records) < h.limit {
			h.records = append(h.records, toOut(m))
			// MarkMessage marks offset+1, the next record to read, as Kafka's committed offsets are.
			s.MarkMessage(m, "")
			if len(h.records) == h.limit {
				h.doneOne.Do(func() { close(h.done) })
			}
		}
		h.mu.Unlock()
	}
	return nil
}

// runGroup calls Consume in a loop (each rebalance ends a session) until ctx is cancelled.
func runGroup(ctx context.Context, group sarama.ConsumerGroup, topic string, h *handler) <-chan struct{} {
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, h); err != nil {
				if err == sarama.ErrClosedConsumerGroup {
					return
				}
				log.Printf("consume: %v", err)
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	go func() {
		for err := range group.Errors() {
			log.Printf("group error: %v", err)
		}
	}()
	return stopped
}

func groupConsume(req *request) {
	c := groupConfig(req)
	group, err := sarama.NewConsumerGroup(bootstrap(req), req.Group, c)
	if err != nil {
		log.Fatalf("new consumer group: %v", err)
	}
	h := &handler{topic: req.Topic, limit: req.Count, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := runGroup(ctx, group, req.Topic, h)
	select {
	case <-h.done:
	case <-time.After(deadline(req)):
		h.mu.Lock()
		log.Printf("timeout: %d of %d records, claims %v", len(h.records), h.limit, h.claims)
		h.mu.Unlock()
		os.Exit(2)
	}
	cancel()
	<-stopped
	// Close leaves the group; the session's release already flushed the marked offsets (OffsetCommit).
	if err := group.Close(); err != nil {
		log.Printf("close: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	reply(map[string]interface{}{"records": h.records, "assignments": h.claims})
}

func groupMember(req *request, in *bufio.Reader) {
	c := groupConfig(req)
	group, err := sarama.NewConsumerGroup(bootstrap(req), req.Group, c)
	if err != nil {
		log.Fatalf("new consumer group: %v", err)
	}
	h := &handler{topic: req.Topic, printed: true, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := runGroup(ctx, group, req.Topic, h)
	for {
		line, err := in.ReadString('\n')
		if strings.TrimSpace(line) == "close" || err != nil {
			break
		}
	}
	cancel()
	<-stopped
	if err := group.Close(); err != nil {
		log.Printf("close: %v", err)
	}
	reply(map[string]interface{}{"event": "closed"})
}

func admin(req *request) {
	c := config(req)
	ca, err := sarama.NewClusterAdmin(bootstrap(req), c)
	if err != nil {
		log.Fatalf("new cluster admin: %v", err)
	}
	defer ca.Close()
	result := map[string]interface{}{}
	switch req.Op {
	case "create_topic":
		err = ca.CreateTopic(req.Topic, &sarama.TopicDetail{NumPartitions: req.Partitions, ReplicationFactor: 1}, false)
	case "delete_topic":
		err = ca.DeleteTopic(req.Topic)
	case "describe_topic":
		var md []*sarama.TopicMetadata
		md, err = ca.DescribeTopics([]string{req.Topic})
		if err == nil {
			if len(md) != 1 {
				log.Fatalf("describe %s: %d topics", req.Topic, len(md))
			}
			parts := []map[string]interface{}{}
			for _, p := range md[0].Partitions {
				parts = append(parts, map[string]interface{}{"partition": p.ID, "leader": p.Leader, "error": int(p.Err)})
			}
			sort.Slice(parts, func(i, j int) bool { return parts[i]["partition"].(int32) < parts[j]["partition"].(int32) })
			result["error"] = int(md[0].Err)
			result["partitions"] = parts
		}
	case "list_topics":
		var topics map[string]sarama.TopicDetail
		topics, err = ca.ListTopics()
		if err == nil {
			t := map[string]int32{}
			for name, d := range topics {
				t[name] = d.NumPartitions
			}
			result["topics"] = t
		}
	default:
		log.Fatalf("admin op %q", req.Op)
	}
	if err != nil {
		// The Kafka error as sarama names it: tests assert e.g. that creating an existing topic is refused.
		result["error_message"] = err.Error()
		if ke, ok := err.(sarama.KError); ok {
			result["error_code"] = int(ke)
		} else if te, ok := err.(*sarama.TopicError); ok {
			result["error_code"] = int(te.Err)
		}
	}
	reply(result)
}
