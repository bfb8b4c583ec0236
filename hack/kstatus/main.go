// Command kstatus prints what kstatus, the status library Flux, kpt and cli-utils use
// (sigs.k8s.io/cli-utils/pkg/kstatus/status), computes for one object: Current, InProgress,
// Failed, Terminating, NotFound or Unknown, and its message.
//
//	kstatus [--resource microservices.v1alpha1.weir.dev] NAMESPACE NAME   # a live object
//	kstatus --file objects.json                                           # stored ones
//
// The live object is read with the dynamic client from the cluster $KUBECONFIG names.
// --file reads one or more JSON objects one after the other ("-" for stdin). Each result
// goes to stdout as one JSON line:
//
//	{"status":"InProgress","message":"...","generation":3,"observedGeneration":2}
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type output struct {
	Status             string `json:"status"`
	Message            string `json:"message"`
	Generation         int64  `json:"generation"`
	ObservedGeneration *int64 `json:"observedGeneration,omitempty"`
}

func main() {
	resource := flag.String("resource", "microservices.v1alpha1.weir.dev",
		"the object's resource as plural.version.group")
	file := flag.String("file", "", "compute the status of each JSON object in this file (- for stdin) instead of a live one")
	timeout := flag.Duration("timeout", 30*time.Second, "deadline for reading the live object")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: %s [--resource plural.version.group] NAMESPACE NAME\n       %s --file OBJECT.json\n", os.Args[0], os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()

	var objects []*unstructured.Unstructured
	var err error
	if *file != "" {
		objects, err = readFile(*file)
	} else {
		if flag.NArg() != 2 {
			flag.Usage()
			os.Exit(2)
		}
		var obj *unstructured.Unstructured
		obj, err = readLive(*resource, flag.Arg(0), flag.Arg(1), *timeout)
		objects = []*unstructured.Unstructured{obj}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}

	encoder := json.NewEncoder(os.Stdout)
	for _, obj := range objects {
		out, err := compute(obj)
		if err == nil {
			err = encoder.Encode(out)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "kstatus:", err)
			os.Exit(1)
		}
	}
}

// compute is kstatus' verdict on obj; nil is an object that does not exist.
func compute(obj *unstructured.Unstructured) (output, error) {
	if obj == nil {
		return output{Status: status.NotFoundStatus.String(), Message: "the object does not exist"}, nil
	}
	result, err := status.Compute(obj)
	if err != nil {
		return output{}, fmt.Errorf("compute: %w", err)
	}
	out := output{Status: result.Status.String(), Message: result.Message, Generation: obj.GetGeneration()}
	if observed, found, err := unstructured.NestedInt64(obj.Object, "status", "observedGeneration"); err == nil && found {
		out.ObservedGeneration = &observed
	}
	return out, nil
}

// readFile reads the JSON objects in a file, one after the other.
func readFile(path string) ([]*unstructured.Unstructured, error) {
	in := os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	decoder := json.NewDecoder(in)
	var objects []*unstructured.Unstructured
	for {
		var raw json.RawMessage
		err := decoder.Decode(&raw)
		if err == io.EOF {
			return objects, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("%s: object %d: %w", path, len(objects)+1, err)
		}
		objects = append(objects, obj)
	}
}

func readLive(resource, namespace, name string, timeout time.Duration) (*unstructured.Unstructured, error) {
	gvr, _ := schema.ParseResourceArg(resource)
	if gvr == nil {
		return nil, fmt.Errorf("--resource %q is not plural.version.group", resource)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	config, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	config.UserAgent = "weir-kstatus"
	client, err := dynamic.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	obj, err := client.Resource(*gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s/%s: %w", resource, namespace, name, err)
	}
	return obj, nil
}
