resource "google_compute_firewall" "ssh" {
  name    = "allow-ssh"
  network = "default"

  # want
  allow {
    protocol = "tcp"
    ports    = ["22", "80"]
  }

  source_ranges = ["0.0.0.0/0"]
}

resource "google_compute_firewall" "any" {
  name    = "allow-all-tcp"
  network = "default"

  # want
  allow {
    protocol = "tcp"
  }

  source_ranges = ["0.0.0.0/0"]
}
