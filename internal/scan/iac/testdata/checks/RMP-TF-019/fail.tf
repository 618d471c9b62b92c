resource "google_storage_bucket_iam_member" "public" {
  bucket = google_storage_bucket.site.name
  role   = "roles/storage.objectViewer"
  # want
  member = "allUsers"
}

resource "google_storage_bucket_iam_binding" "readers" {
  bucket = google_storage_bucket.site.name
  role   = "roles/storage.objectViewer"
  # want
  members = [
    "group:readers@example.com",
    "allAuthenticatedUsers",
  ]
}
