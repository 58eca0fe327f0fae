package server

import "github.com/labstack/echo/v4"

// OATHConfig configures the oath flow. The zero value is its default.
type OATHConfig struct {
}

// withDefaults fills in defaults and checks the settings against the rest
// of the configuration (for example, that a master key is present).
func (c OATHConfig) withDefaults(all Config) (OATHConfig, error) {
	return c, nil
}

func (s *Server) oathRoutes(e *echo.Echo) {
}
