package apiserver

import (
	"strings"
	"testing"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	_ "github.com/cairnhq/cairn/proto/cairn/v1"
)

// requestTypes are the request messages of every cairn procedure.
func requestTypes(tb testing.TB) []protoreflect.MessageDescriptor {
	var out []protoreflect.MessageDescriptor
	seen := map[protoreflect.FullName]bool{}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "cairn.") {
			return true
		}
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for k := range sd.Methods().Len() {
				in := sd.Methods().Get(k).Input()
				if !seen[in.FullName()] {
					seen[in.FullName()] = true
					out = append(out, in)
				}
			}
		}
		return true
	})
	if len(out) < 40 {
		tb.Fatalf("only %d request types found", len(out))
	}
	return out
}

// FuzzRequestValidation feeds arbitrary bytes, as every request message of
// every cairn procedure, through the decoding and the protovalidate rules
// the servers apply at their edge: nothing may panic, and what passes is a
// message that encodes again.
func FuzzRequestValidation(f *testing.F) {
	types := requestTypes(f)
	v, err := protovalidate.New()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(3), []byte{0x0a, 0x02, '/', 0})
	f.Add(uint8(7), []byte{0x0a, 0x03, 0xff, 0xfe, 0xfd})
	f.Add(uint8(11), []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		md := types[int(which)%len(types)]
		var msg proto.Message
		if mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName()); err == nil {
			msg = mt.New().Interface()
		} else {
			msg = dynamicpb.NewMessage(md)
		}
		if err := proto.Unmarshal(b, msg); err != nil {
			return // the server answers InvalidArgument
		}
		if err := v.Validate(msg); err != nil {
			return // the server answers InvalidArgument naming the field
		}
		if _, err := proto.Marshal(msg); err != nil {
			t.Fatalf("%s passed validation but does not encode: %v", md.FullName(), err)
		}
	})
}
