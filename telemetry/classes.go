package telemetry

// Method is a normalised HTTP method: the `method` label.
type Method uint8

// The standard methods, and MethodOther for any other token.
const (
	MethodOther Method = iota
	MethodGet
	MethodHead
	MethodPost
	MethodPut
	MethodDelete
	MethodPatch
	MethodOptions
	MethodConnect
	MethodTrace
	numMethods
)

var methodNames = [numMethods]string{"OTHER", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"}

// String returns the label value.
func (m Method) String() string {
	if m >= numMethods {
		return methodNames[MethodOther]
	}
	return methodNames[m]
}

// ClassifyMethod normalises a request method.
func ClassifyMethod(m []byte) Method {
	switch string(m) {
	case "GET":
		return MethodGet
	case "HEAD":
		return MethodHead
	case "POST":
		return MethodPost
	case "PUT":
		return MethodPut
	case "DELETE":
		return MethodDelete
	case "PATCH":
		return MethodPatch
	case "OPTIONS":
		return MethodOptions
	case "CONNECT":
		return MethodConnect
	case "TRACE":
		return MethodTrace
	}
	return MethodOther
}
